import { describe, expect, it } from "vitest";
import {
  dayNumber,
  dayRange,
  dayString,
  defaultChoices,
  estimate,
  groupCounts,
  ledgerLine,
  presentGroups,
  sendLine,
  shareOf,
  type Choices,
} from "../lib/choice";
import type { Tally } from "../bindings/Tally";

const d = (s: string) => dayNumber(s) ?? Number.NaN;

const tally: Tally = {
  frame_bytes: 500,
  profile_bytes: 120,
  rows: [
    { group: "heart", day: d("2024-03-01"), items: 100, bytes: 10_000, new_items: 10, new_bytes: 1_000 },
    { group: "heart", day: d("2024-03-02"), items: 50, bytes: 5_000, new_items: 50, new_bytes: 5_000 },
    { group: "sleep", day: d("2024-03-02"), items: 20, bytes: 2_000, new_items: 0, new_bytes: 0 },
    { group: "workouts", day: d("2024-03-02"), items: 3, bytes: 3_000, new_items: 1, new_bytes: 1_000 },
    { group: "clinical", day: d("2024-03-01"), items: 2, bytes: 800, new_items: 2, new_bytes: 800 },
  ],
};
const ledger = { items: 112, workouts: 2, imports: 3, updated_at: Date.UTC(2026, 10, 30) / 1000 };

function with_(changes: Partial<Choices>): Choices {
  return { ...defaultChoices(tally, ledger), ...changes };
}

describe("what to send", () => {
  it("starts with what is new when something was sent before, clinical records off", () => {
    expect(defaultChoices(tally, null).newOnly).toBe(false);
    const choices = defaultChoices(tally, ledger);
    expect(choices.newOnly).toBe(true);
    expect([...choices.groups].sort()).toEqual(["heart", "sleep", "workouts"]);
    expect(choices.includeMe).toBe(false);
    expect(presentGroups(tally).map((g) => g.label)).toEqual(["Heart", "Sleep", "Workouts", "Clinical records"]);
  });

  it("counts what the choices send, from the tally alone", () => {
    const e = estimate(tally, with_({}));
    expect(e).toEqual({ items: 61, workouts: 1, bytes: 7_000 + 500, onServer: 112 });
    expect(sendLine(e)).toBe("60 items and 1 workout, 7.5 KB will be sent (112 already on the server).");
    const everything = estimate(tally, with_({ newOnly: false, includeMe: true }));
    expect(everything.items).toBe(173);
    expect(everything.bytes).toBe(20_000 + 500 + 120);
    expect(everything.onServer).toBe(0);
    const one_day = estimate(tally, with_({ from: "2024-03-02", to: "2024-03-02" }));
    expect(one_day.items).toBe(51);
    const none = estimate(tally, with_({ groups: new Set(["sleep"]) }));
    expect(none.items).toBe(0);
    expect(sendLine(none)).toBe("Nothing to send (20 already on the server).");
  });

  it("counts each group in the days chosen, new or all", () => {
    const counts = groupCounts(tally, with_({ from: "2024-03-02" }));
    expect(counts.get("heart")).toBe(50);
    expect(counts.get("clinical")).toBeUndefined();
    expect(groupCounts(tally, with_({ newOnly: false })).get("heart")).toBe(150);
  });

  it("turns the choices into the core's share", () => {
    const present = presentGroups(tally);
    expect(shareOf(with_({}), present).only).toBeNull();
    const noHeart = shareOf(with_({ groups: new Set(["sleep", "workouts"]), from: "2024-03-02", includeMe: true }), present);
    expect(noHeart.only).toEqual({ categories: ["sleep"], kinds: ["Workout"] });
    expect(noHeart.from).toBe(d("2024-03-02"));
    expect(noHeart.to).toBeNull();
    expect(noHeart.include_me).toBe(true);
    const clinical = shareOf(with_({ groups: new Set(["heart", "sleep", "workouts", "clinical"]) }), present);
    expect(clinical.only?.kinds).toEqual(["Workout", "ClinicalRecord", "Audiogram", "VisionPrescription"]);
    expect(clinical.only?.categories).toContain("nutrition");
  });

  it("counts undated documents only while no days are chosen", () => {
    const undated: Tally = {
      ...tally,
      rows: [...tally.rows, { group: "clinical", day: null, items: 4, bytes: 400, new_items: 4, new_bytes: 400 }],
    };
    const clinical = new Set(["clinical"]);
    expect(estimate(undated, with_({ groups: clinical })).items).toBe(6);
    expect(estimate(undated, with_({ groups: clinical, to: "2024-03-05" })).items).toBe(2);
    expect(dayRange(undated)).toEqual({ first: "2024-03-01", last: "2024-03-02" });
    expect(defaultChoices(undated, ledger, true).newOnly).toBe(false);
  });

  it("reads days and the ledger for people", () => {
    expect(dayNumber("1970-01-02")).toBe(1);
    expect(dayNumber("2024-13-01")).toBeNull();
    expect(dayString(d("2024-03-02"))).toBe("2024-03-02");
    expect(ledgerLine(null)).toBe("Nothing from this computer has reached this user yet.");
    expect(ledgerLine(ledger)).toBe("Last confirmed upload on 2026-11-30 (3 imports, 112 items).");
  });
});
