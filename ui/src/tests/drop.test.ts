import { describe, expect, it } from "vitest";
import type { Backend } from "../lib/backend";
import { DropTarget } from "../lib/drop.svelte";

function backendWith(check: (path: string) => { ok: boolean; reason?: string }): Backend {
  return {
    checkExport: async (path: string) => {
      const verdict = check(path);
      return {
        path,
        ok: verdict.ok,
        reason: verdict.reason ?? null,
        kind: verdict.ok ? null : "not_an_export",
        xml_name: verdict.ok ? "export.xml" : null,
        file_size: 10,
      };
    },
  } as unknown as Backend;
}

describe("the drop target", () => {
  it("says on hover whether the file can be opened, and opens it on drop", async () => {
    const opened: string[] = [];
    const target = new DropTarget(backendWith(() => ({ ok: true })), (p) => opened.push(p));
    await target.handle({ type: "enter", paths: ["/home/ada/export.zip"] });
    expect(target.hover).toEqual({ state: "ok", name: "export.zip", detail: "Release to open export.xml" });
    await target.handle({ type: "drop", paths: ["/home/ada/export.zip"] });
    expect(opened).toEqual(["/home/ada/export.zip"]);
    expect(target.hover).toBeNull();
  });

  it("refuses a wrong file with the core's reason, and several files at once", async () => {
    const opened: string[] = [];
    const reason = "notes.txt is neither a zip archive nor an XML file";
    const target = new DropTarget(backendWith(() => ({ ok: false, reason })), (p) => opened.push(p));
    await target.handle({ type: "enter", paths: ["/tmp/notes.txt"] });
    expect(target.hover).toEqual({ state: "refused", name: "notes.txt", reason });
    await target.handle({ type: "drop", paths: ["/tmp/notes.txt"] });
    expect(opened).toEqual([]);
    expect(target.refusal).toBe(reason);

    await target.handle({ type: "enter", paths: ["/a.zip", "/b.zip"] });
    expect(target.hover?.state).toBe("refused");
    await target.handle({ type: "leave" });
    expect(target.hover).toBeNull();
  });
});
