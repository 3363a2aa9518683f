import { createMemoryBackend } from "../../server/core/memory-backend.js";
import { backendContract } from "./backend-contract.js";

backendContract("in memory", async (options) => ({ backend: createMemoryBackend(options), close: async () => {} }));
