import { createMemoryBackend } from "../../server/core/memory-backend.js";
import { backendContract } from "./backend-contract.js";
import { historyContract } from "./history-contract.js";
import { realtimeContract } from "./realtime-contract.js";

backendContract("in memory", async (options) => ({ backend: createMemoryBackend(options), close: async () => {} }));
realtimeContract("in memory", async (options) => {
  const backend = createMemoryBackend(options);
  return { backend, close: async () => backend.close() };
});
historyContract("in memory", async (options) => {
  const backend = createMemoryBackend(options);
  return { backend, close: async () => backend.close() };
});
