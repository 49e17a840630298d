export { WorkerAgent, type WorkerAgentOptions } from './agent.js';
export { createWorkerModule, workerIdFrom, type WorkerModule } from './module.js';
export * from './protocol.js';
