/** The same helper as the bench and npm-start tests use (scripts/free-port.ts). */
export * from '../../scripts/free-port.ts';
