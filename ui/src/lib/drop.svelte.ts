// The drop target: while files hover over the window, say whether they
// can be opened (the core looks inside the file, so a renamed zip or a
// wrong XML is refused with its reason before it is dropped).
import type { Backend, DropEvent } from "./backend";
import { fileName } from "./format";

export type Hover =
  | { state: "checking"; name: string }
  | { state: "ok"; name: string; detail: string }
  | { state: "refused"; name: string; reason: string };

export class DropTarget {
  hover: Hover | null = $state(null);
  /** Why the last dropped file was refused, until dismissed. */
  refusal: string | null = $state(null);
  private checked = new Map<string, Hover>();

  constructor(
    private readonly backend: Backend,
    private readonly open: (path: string) => void,
  ) {}

  async handle(event: DropEvent): Promise<void> {
    switch (event.type) {
      case "enter":
        this.refusal = null;
        await this.check(event.paths);
        return;
      case "over":
        return;
      case "leave":
        this.reset();
        return;
      case "drop": {
        const verdict = await this.check(event.paths);
        this.reset();
        const path = event.paths[0];
        if (verdict.state === "ok" && path) this.open(path);
        else if (verdict.state === "refused") this.refusal = verdict.reason;
        return;
      }
    }
  }

  private async check(paths: string[]): Promise<Hover> {
    const path = paths[0];
    if (paths.length !== 1 || !path) {
      return this.show("", {
        state: "refused",
        name: `${paths.length} files`,
        reason: "Drop one export at a time: the export.zip (or export.xml) from the Health app.",
      });
    }
    const known = this.checked.get(path);
    if (known && known.state !== "checking") return this.show(path, known);
    const name = fileName(path);
    this.show(path, { state: "checking", name });
    let verdict: Hover;
    try {
      const check = await this.backend.checkExport(path);
      verdict = check.ok
        ? { state: "ok", name, detail: `Release to open ${check.xml_name ?? name}` }
        : { state: "refused", name, reason: check.reason ?? "This is not an Apple Health export." };
    } catch (e) {
      verdict = { state: "refused", name, reason: String((e as { message?: string }).message ?? e) };
    }
    return this.show(path, verdict);
  }

  /** A file may change between two drags: check it again next time. */
  private reset(): void {
    this.hover = null;
    this.checked.clear();
  }

  private show(path: string, hover: Hover): Hover {
    if (path !== "") this.checked.set(path, hover);
    this.hover = hover;
    return hover;
  }
}
