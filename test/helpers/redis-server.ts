/** Tests start redis-server with the same helper as the bench (scripts/redis-server.ts). */
export * from '../../scripts/redis-server.ts';
