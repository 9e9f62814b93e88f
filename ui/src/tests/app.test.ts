import { afterEach, describe, expect, it } from "vitest";
import { mount, unmount } from "svelte";
import App from "../App.svelte";
import type { Backend } from "../lib/backend";
import type { ShellEvent } from "../bindings/ShellEvent";
import { exportInfo } from "./fixtures";
import { fakeBackend, settle } from "./backend-fake";

/** The shell answers `startup_export` once per export, then null. */
function once(path: string): () => Promise<string | null> {
  let left: string | null = path;
  return async () => {
    const answer = left;
    left = null;
    return answer;
  };
}

let app: ReturnType<typeof mount> | null = null;
afterEach(() => {
  if (app) unmount(app);
  app = null;
  document.body.innerHTML = "";
});

describe("the app", () => {
  it("lists the exports opened before on its start screen", async () => {
    app = mount(App, { target: document.body, props: { backend: fakeBackend() } });
    await settle();
    expect(document.body.textContent).toContain("Drop your Apple Health export here");
    expect(document.body.textContent).toContain("export-1.zip");
  });

  it("opens the command-line export and shows its summary", async () => {
    const backend = fakeBackend({ startupExport: once("/home/ada/export-1.zip") });
    app = mount(App, { target: document.body, props: { backend } });
    await settle();
    const text = document.body.textContent ?? "";
    expect(text).toContain("What is in it");
    expect(text).toContain("Heart rate");
    expect(document.querySelectorAll('[role="tab"]').length).toBe(5);
  });

  it("opens an export again on its summary, whichever tab was last", async () => {
    const backend = fakeBackend({ startupExport: once("/home/ada/export-1.zip") });
    app = mount(App, { target: document.body, props: { backend } });
    await settle();
    const button = (label: string) =>
      [...document.querySelectorAll("button")].find((b) => b.textContent?.trim().startsWith(label));
    button("Send")?.click();
    await settle();
    expect(document.querySelector('[role="tab"][aria-selected="true"]')?.textContent).toBe("Send");
    button("All exports")?.click();
    await settle();
    button("export-1.zip")?.click();
    await settle();
    expect(document.querySelector('[role="tab"][aria-selected="true"]')?.textContent).toBe("Summary");
    expect(document.body.textContent).toContain("What is in it");
  });
});

describe("the shell's events", () => {
  /** A backend whose shell events the test sends, and what it was asked. */
  function shell(overrides: Partial<Backend> = {}) {
    let send: (event: ShellEvent) => void = () => {};
    const asked: string[] = [];
    const waiting: string[] = [];
    const backend = fakeBackend({
      onShellEvent: async (handler) => {
        send = handler;
        return () => {};
      },
      startupExport: async () => waiting.shift() ?? null,
      openExport: async (path) => {
        asked.push(`open ${path}`);
        return { export: exportInfo(2), reused: false, seconds: 0.5 };
      },
      listExports: async () => [exportInfo(1), exportInfo(2)],
      pickExport: async () => {
        asked.push("pick");
        return null;
      },
      ...overrides,
    });
    const handOver = (path: string) => {
      waiting.push(path);
      send({ type: "export_waiting" });
    };
    return { backend, asked, send: (e: ShellEvent) => send(e), handOver };
  }

  it("opens an export a second launch handed over, once", async () => {
    const s = shell();
    app = mount(App, { target: document.body, props: { backend: s.backend } });
    await settle();
    expect(s.asked).toEqual([]);
    s.handOver("/home/ada/export-2.zip");
    await settle();
    expect(s.asked).toEqual(["open /home/ada/export-2.zip"]);
    expect(document.body.textContent).toContain("What is in it");
    // The event again, with nothing waiting: nothing is read twice.
    s.send({ type: "export_waiting" });
    await settle();
    expect(s.asked).toEqual(["open /home/ada/export-2.zip"]);
  });

  it("opens every export handed over at once, in order", async () => {
    const s = shell();
    app = mount(App, { target: document.body, props: { backend: s.backend } });
    await settle();
    s.handOver("/home/ada/export-1.zip");
    s.handOver("/home/ada/export-2.zip");
    await settle();
    expect(s.asked).toEqual(["open /home/ada/export-1.zip", "open /home/ada/export-2.zip"]);
  });

  it("shows an export from Open Recent and asks for a file from Open…", async () => {
    const s = shell();
    app = mount(App, { target: document.body, props: { backend: s.backend } });
    await settle();
    s.send({ type: "show", export_id: 2 });
    await settle();
    expect(document.body.textContent).toContain("What is in it");
    expect(document.body.textContent).toContain("export-2.zip");
    expect(s.asked).toEqual([]);
    s.send({ type: "pick" });
    await settle();
    expect(s.asked).toEqual(["pick"]);
  });

  it("reads an export handed over during another read right after it", async () => {
    let finish: () => void = () => {};
    const s = shell();
    const open = s.backend.openExport;
    s.backend.openExport = async (path, operation, onProgress) => {
      if (path.endsWith("export-1.zip")) await new Promise<void>((r) => (finish = r));
      return open(path, operation, onProgress);
    };
    app = mount(App, { target: document.body, props: { backend: s.backend } });
    await settle();
    s.handOver("/home/ada/export-1.zip");
    await settle();
    s.handOver("/home/ada/export-2.zip");
    await settle();
    expect(s.asked).toEqual([]);
    finish();
    await settle();
    expect(s.asked).toEqual(["open /home/ada/export-1.zip", "open /home/ada/export-2.zip"]);
  });
});
