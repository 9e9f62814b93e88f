import { afterEach, describe, expect, it } from "vitest";
import { flushSync, mount, unmount } from "svelte";
import WorkoutsView from "../components/WorkoutsView.svelte";
import type { Backend } from "../lib/backend";
import { summary, workoutRow as row } from "./fixtures";

const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  flushSync();
};

let view: ReturnType<typeof mount> | null = null;
afterEach(() => {
  if (view) unmount(view);
  view = null;
  document.body.innerHTML = "";
});

describe("the workouts table", () => {
  it("renders a window of thousands of rows and moves through them by keyboard", async () => {
    const rows = Array.from({ length: 5000 }, (_, i) => row(i + 1));
    const details: number[] = [];
    const filters: unknown[] = [];
    const backend = {
      listWorkouts: async (_id: number, filter: unknown) => {
        filters.push(filter);
        return rows;
      },
      workoutDetail: async (id: number) => {
        details.push(id);
        throw { kind: "not_found", message: "not in this test" };
      },
    } as unknown as Backend;
    view = mount(WorkoutsView, { target: document.body, props: { backend, summary: summary(1) } });
    await settle();

    expect(document.body.textContent).toContain("5,000 workouts");
    const rendered = document.querySelectorAll('[role="row"][id^="workout-"]').length;
    expect(rendered).toBeGreaterThan(0);
    expect(rendered).toBeLessThan(100);
    expect(details).toEqual([1]);

    const grid = document.querySelector('[role="grid"]') as HTMLElement;
    grid.dispatchEvent(new KeyboardEvent("keydown", { key: "End", bubbles: true }));
    await settle();
    expect(grid.getAttribute("aria-activedescendant")).toBe("workout-5000");
    expect(details.at(-1)).toBe(5000);

    const byDistance = document.querySelector('button[aria-label="Sort by Distance"]') as HTMLButtonElement;
    byDistance.click();
    await settle();
    expect(filters.at(-1)).toMatchObject({ sort: "distance", descending: true });
  });
});
