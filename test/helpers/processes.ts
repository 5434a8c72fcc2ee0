/** Tests start the project's processes with the same helper as the bench (scripts/processes.ts). */
export * from '../../scripts/processes.ts';
