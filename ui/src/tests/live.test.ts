// The live preview: the window shows what an export holds while it is read,
// and the finished preview takes over in place.
import { afterEach, describe, expect, it } from "vitest";
import { mount, unmount } from "svelte";
import App from "../App.svelte";
import type { Backend } from "../lib/backend";
import type { Glimpse } from "../bindings/Glimpse";
import type { Summary } from "../bindings/Summary";
import { exportInfo, summary, workoutRow } from "./fixtures";
import { fakeBackend, settle } from "./backend-fake";

let app: ReturnType<typeof mount> | null = null;
afterEach(() => {
  if (app) unmount(app);
  app = null;
  document.body.innerHTML = "";
});

/** The summary of export 7 with `records` records read so far. */
function soFar(records: number, workouts: number): Summary {
  const s = summary(7);
  return {
    ...s,
    export: { ...s.export, state: "reading", fingerprint: null },
    records,
    records_stored: records,
    workouts,
    record_types: s.record_types.map((t) => ({ ...t, count: records })),
  };
}

/** A read the test steps through: each glimpse when it says, then the end. */
function steppedRead() {
  let glimpse: (g: Glimpse) => void = () => {};
  let finish: (ok: boolean) => void = () => {};
  const final = soFar(2_000_000, 2);
  const backend: Backend = fakeBackend({
    openExport: (_path, _operation, _progress, _force, onGlimpse) => {
      glimpse = (g) => onGlimpse?.(g);
      return new Promise((resolve, reject) => {
        finish = (ok) =>
          ok
            ? resolve({ export: exportInfo(7), reused: false, seconds: 3.1 })
            : reject({ kind: "cancelled", message: "Cancelled." });
      });
    },
    exportSummary: async () => ({ ...final, export: exportInfo(7) }),
    listWorkouts: async () => [workoutRow(2), workoutRow(1)],
    listExports: async () => [],
    pickExport: async () => "/home/ada/export-7.zip",
  });
  return {
    backend,
    glimpse: (g: Glimpse) => glimpse(g),
    finish: (ok: boolean) => finish(ok),
    final,
  };
}

const text = () => document.body.textContent ?? "";
const button = (label: string) =>
  [...document.querySelectorAll("button")].find((b) => b.textContent?.trim().startsWith(label));

async function openWithKeys(): Promise<void> {
  window.dispatchEvent(new KeyboardEvent("keydown", { key: "o", ctrlKey: true }));
  await settle();
}

describe("the live preview", () => {
  it("shows the summary while reading, then the finished one in place", async () => {
    const read = steppedRead();
    app = mount(App, { target: document.body, props: { backend: read.backend } });
    await settle();
    await openWithKeys();
    expect(text()).toContain("Opening export-7.zip");

    read.glimpse({ summary: soFar(16_384, 0), workouts: [] });
    await settle();
    expect(text()).toContain("Records (so far)");
    expect(text()).toContain("16,384");
    expect(button("Cancel")).toBeTruthy();

    read.glimpse({ summary: soFar(1_200_000, 1), workouts: [workoutRow(1)] });
    await settle();
    expect(text()).toContain("1,200,000");
    expect(text()).not.toContain("16,384");

    read.finish(true);
    await settle();
    expect(text()).not.toContain("(so far)");
    expect(text()).toContain("2,000,000");
    expect(button("Cancel")).toBeUndefined();
  });

  it("lets the person browse the workouts read so far, and keeps their place", async () => {
    const read = steppedRead();
    app = mount(App, { target: document.body, props: { backend: read.backend } });
    await settle();
    await openWithKeys();
    read.glimpse({ summary: soFar(10, 1), workouts: [workoutRow(1)] });
    await settle();

    button("Workouts")?.click();
    await settle();
    expect(text()).toContain("1 workouts so far");
    expect(text()).toContain("appear once the export is read");

    read.glimpse({ summary: soFar(20, 2), workouts: [workoutRow(2, { start: "2024-04-01T07:00:00-07:00" })] });
    await settle();
    expect(text()).toContain("2 workouts so far");
    // The first one read stays the one selected as the newer one arrives.
    expect(document.querySelector('[aria-selected="true"][role="row"]')?.id).toBe("workout-1");

    button("Charts")?.click();
    await settle();
    expect(text()).toContain("This appears once the export is read.");

    button("Workouts")?.click();
    await settle();
    read.finish(true);
    await settle();
    expect(document.querySelector('[role="tab"][aria-selected="true"]')?.textContent).toBe("Workouts");
    expect(text()).toContain("2 workouts");
    expect(text()).not.toContain("so far");
  });

  it("a read cancelled midway leaves the start screen as it was", async () => {
    const read = steppedRead();
    app = mount(App, { target: document.body, props: { backend: read.backend } });
    await settle();
    await openWithKeys();
    read.glimpse({ summary: soFar(10, 0), workouts: [] });
    await settle();
    expect(text()).toContain("Records (so far)");
    read.finish(false);
    await settle();
    expect(text()).toContain("Drop your Apple Health export here");
    expect(text()).not.toContain("Records (so far)");
  });
});
