// A backend that answers like an empty store and no server, for mounting
// the whole app in tests; each test overrides what it exercises.
import { flushSync } from "svelte";
import type { Backend } from "../lib/backend";
import { exportInfo, summary } from "./fixtures";

export function fakeBackend(overrides: Partial<Backend> = {}): Backend {
  return {
    startupExport: async () => null,
    checkExport: async (path) => ({ path, ok: true, reason: null, kind: null, xml_name: "export.xml", file_size: 1 }),
    openExport: async () => ({ export: exportInfo(1), reused: true, seconds: 0.01 }),
    cancelOperation: async () => false,
    listExports: async () => [exportInfo(1)],
    exportSummary: async (id) => summary(id),
    serverPreview: async () => {
      throw { kind: "internal", message: "not in this test" };
    },
    listWorkouts: async () => [],
    workoutDetail: async () => {
      throw { kind: "not_found", message: "none" };
    },
    dailySeries: async () => {
      throw { kind: "not_found", message: "none" };
    },
    connectionStatus: async () => ({ connection: null, saved: null }),
    connectLocal: async () => ({ server: "http://127.0.0.1:1", local: true, email: null, kept: null }),
    connectRemote: async () => {
      throw { kind: "network", message: "not in this test" };
    },
    disconnect: async () => {},
    listUsers: async () => ({ items: [], total: 0, page: 1, pages: 0, has_next: false }),
    createUser: async () => {
      throw { kind: "server", message: "not in this test" };
    },
    startImport: async () => {
      throw { kind: "not_connected", message: "not in this test" };
    },
    planImport: async () => {
      throw { kind: "not_connected", message: "not in this test" };
    },
    ledgerSummary: async () => null,
    uploadHistory: async () => [],
    interruptedUploads: async () => [],
    pickExport: async () => null,
    onFileDrop: async () => () => {},
    onShellEvent: async () => () => {},
    ...overrides,
  };
}

/** Lets pending promises and Svelte's updates run, then flushes the DOM. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  flushSync();
}
