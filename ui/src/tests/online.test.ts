import { afterEach, describe, expect, it } from "vitest";
import { clearMocks, mockIPC } from "@tauri-apps/api/mocks";
import type { Channel } from "@tauri-apps/api/core";
import { tauriBackend } from "../ipc";
import { Online, advice, isPlainHttpElsewhere, userLabel } from "../lib/online.svelte";
import type { ImportEvent } from "../bindings/ImportEvent";
import type { Share } from "../bindings/Share";

afterEach(() => clearMocks());

const ada = { id: "u1", created_at: null, first_name: "Ada", last_name: "Lovelace", email: null, last_synced_at: null };

describe("the online state", () => {
  it("connects to the bundled server, picks a user, sends and keeps the result", async () => {
    const calls: [string, unknown][] = [];
    let seenWhileRunning: string | null = null;
    let online: Online | null = null;
    mockIPC((cmd, args) => {
      calls.push([cmd, cmd === "start_import" ? (args as { request: unknown }).request : args]);
      switch (cmd) {
        case "connection_status":
          return { connection: null, saved: null };
        case "interrupted_uploads":
          return [];
        case "connect_local":
          return { server: "http://127.0.0.1:41234", local: true, email: null, kept: null };
        case "list_users":
          return { items: [ada], total: 1, page: 1, pages: 1, has_next: false };
        case "start_import": {
          const channel = (args as { onEvent: Channel<ImportEvent> }).onEvent;
          channel.onmessage({ type: "step", data: { step: "plan", method: "direct", pieces: 1, why: "small enough" } });
          channel.onmessage({ type: "step", data: { step: "compared", found: 6, expected: 6 } });
          seenWhileRunning = online?.running?.sending.plan?.method ?? null;
          return { checked: null, pieces: [], compared: [6, 6] };
        }
        case "upload_history":
          return [];
        default:
          return null;
      }
    });
    online = new Online(tauriBackend, () => 0);
    await online.start();
    expect(online.connection).toBeNull();
    expect(await online.connectLocal()).toBe(true);
    expect(online.connection?.local).toBe(true);
    expect(online.users).toEqual([ada]);
    online.user = online.users[0] ?? null;
    await online.send({ exportId: 3 }, "auto");
    expect(seenWhileRunning).toBe("direct");
    expect(online.running).toBeNull();
    expect(online.last?.compared).toEqual({ found: 6, expected: 6 });
    expect(online.error).toBeNull();
    const sent = calls.find(([c]) => c === "start_import")?.[1] as Record<string, unknown>;
    expect(sent).toMatchObject({ export_id: 3, user_id: "u1", method: "auto", clean: true });
    expect(calls.map(([c]) => c)).toContain("upload_history");
  });

  it("counts what would go for the user picked, sends what was chosen, and counts again after", async () => {
    const calls: [string, Record<string, unknown>][] = [];
    const tally = { frame_bytes: 10, profile_bytes: 5, rows: [{ group: "heart", day: 1, items: 4, bytes: 40, new_items: 1, new_bytes: 10 }] };
    mockIPC((cmd, args) => {
      const request = (args as { request?: Record<string, unknown> }).request ?? {};
      calls.push([cmd, request]);
      switch (cmd) {
        case "ledger_summary":
          return { items: 3, workouts: 0, imports: 1, updated_at: 0 };
        case "plan_import": {
          const channel = (args as { onProgress: Channel<unknown> }).onProgress;
          channel.onmessage({ event: "started", phase: "check", total: 100 });
          return { checked: { tally }, method: "direct", why: "small", pieces: 1, server_forgot: null };
        }
        case "start_import":
          return { checked: null, pieces: [], compared: null, ending: "reported" };
        default:
          return [];
      }
    });
    const online = new Online(tauriBackend, () => 0);
    online.connection = { server: "http://127.0.0.1:1", local: true, email: null, kept: null };
    online.user = ada;
    await online.prepare({ exportId: 3 });
    expect(online.ledger?.items).toBe(3);
    expect(online.plan?.checked.tally).toEqual(tally);
    expect(online.planning).toBeNull();
    const planned = calls.find(([c]) => c === "plan_import")?.[1];
    expect(planned).toMatchObject({ export_id: 3, user_id: "u1", delta: true, share: { only: null, include_me: true } });
    // The same export and user: counted once.
    await online.prepare({ exportId: 3 });
    expect(calls.filter(([c]) => c === "plan_import")).toHaveLength(1);

    const share: Share = { only: { categories: ["heart"], kinds: [] }, except: { categories: [], kinds: [] }, from: 1, to: null, include_me: false };
    await online.send({ exportId: 3 }, "auto", true, { delta: false, share });
    const sent = calls.find(([c]) => c === "start_import")?.[1];
    expect(sent).toMatchObject({ delta: false, share });
    expect(calls.filter(([c]) => c === "plan_import")).toHaveLength(2);
  });

  it("pages through users, keeps only the latest search's answer, and names users in history", async () => {
    const people = Array.from({ length: 5 }, (_, i) => ({ ...ada, id: `u${i}`, first_name: `P${i}`, last_name: null }));
    const asked: [string | undefined, number][] = [];
    let releaseSlow: (() => void) | null = null;
    mockIPC(async (cmd, args) => {
      if (cmd !== "list_users") return null;
      const { request } = args as { request: { search?: string; page: number } };
      asked.push([request.search, request.page]);
      if (request.search === "slow") await new Promise<void>((resolve) => (releaseSlow = resolve));
      const matching = request.search === "P4" ? people.slice(4) : people;
      const items = matching.slice((request.page - 1) * 2, request.page * 2);
      return { items, total: matching.length, page: request.page, pages: 3, has_next: request.page * 2 < matching.length };
    });
    const online = new Online(tauriBackend, () => 0);
    await online.searchUsers("");
    expect(online.users.map((u) => u.id)).toEqual(["u0", "u1"]);
    expect(online.usersHasNext).toBe(true);
    await online.moreUsers();
    await online.moreUsers();
    expect(online.users.map((u) => u.id)).toEqual(["u0", "u1", "u2", "u3", "u4"]);
    expect(online.usersHasNext).toBe(false);
    await online.moreUsers();
    expect(asked).toEqual([[undefined, 1], [undefined, 2], [undefined, 3]]);

    // A slow answer to an older search does not overwrite a newer one.
    const slow = online.searchUsers("slow");
    await online.searchUsers("P4");
    (releaseSlow as (() => void) | null)?.();
    await slow;
    expect(online.users.map((u) => u.id)).toEqual(["u4"]);

    // "More" while a search is on its way asks for nothing.
    const pending = online.searchUsers("slow");
    const before = asked.length;
    await online.moreUsers();
    expect(asked.length).toBe(before);
    (releaseSlow as (() => void) | null)?.();
    await pending;
    expect(online.users.map((u) => u.id)).toEqual(["u0", "u1"]);

    expect(online.userName("u3")).toBe("P3");
    expect(online.userName("unknown-id")).toBe("unknown-id");
    expect(userLabel({ id: "x", first_name: null, last_name: null, email: "e@x.org" })).toBe("e@x.org");
  });

  it("sends the password once and shows a refused login with what to do", async () => {
    const requests: unknown[] = [];
    mockIPC((cmd, args) => {
      if (cmd === "connect_remote") {
        requests.push((args as { request: unknown }).request);
        throw { kind: "login", message: "wrong email or password for https://ow.example" };
      }
      return null;
    });
    const online = new Online(tauriBackend);
    const ok = await online.connectRemote("https://ow.example", { email: "a@b.c", password: "pw" });
    expect(ok).toBe(false);
    expect(requests).toEqual([{ server: "https://ow.example", email: "a@b.c", password: "pw" }]);
    expect(online.error?.kind).toBe("login");
    expect(advice(online.error!)).toMatch(/connect again/);
    expect(JSON.stringify(online)).not.toContain("pw\"");
  });

  it("offers an interrupted upload at launch and resumes it for the same user", async () => {
    const record = {
      id: 9, export_key: "k", source_path: "/x/export.zip", server: "http://h", user_id: "u1", method: "multipart",
      name: null, file_key: null, task_id: null, parts: 10, bytes: 100, started_at: 0, finished_at: null,
      outcome: "sending", items: null, error: null, batch: "b", piece: 1, pieces: 1, fingerprint: "f", cleaned: true,
    };
    let started: unknown = null;
    mockIPC((cmd, args) => {
      if (cmd === "connection_status") return { connection: { server: "http://h", local: false, email: null, kept: "keychain" }, saved: null };
      if (cmd === "interrupted_uploads") return started ? [] : [{ batch: "b", pieces: [record], multipart: null }];
      if (cmd === "start_import") {
        started = (args as { request: unknown }).request;
        return { checked: null, pieces: [], compared: null };
      }
      if (cmd === "upload_history") return [record];
      return null;
    });
    const online = new Online(tauriBackend);
    await online.start();
    expect(online.interrupted).toHaveLength(1);
    await online.resume(online.interrupted[0]!);
    expect(started).toMatchObject({ path: "/x/export.zip", user_id: "u1", clean: true });
    expect(online.interrupted).toEqual([]);
  });
});

describe("plain HTTP", () => {
  it("is flagged only when it leaves this computer", () => {
    for (const elsewhere of ["http://192.168.1.5:8000", "http://ow.example.com", "HTTP://0.0.0.0:8000"]) {
      expect(isPlainHttpElsewhere(elsewhere), elsewhere).toBe(true);
    }
    for (const here of ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000", "https://ow.example.com", "", "not a url"]) {
      expect(isPlainHttpElsewhere(here), here).toBe(false);
    }
  });
});
