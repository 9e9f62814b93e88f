import { describe, expect, it } from "vitest";
import {
  dayNumber,
  dayString,
  fileName,
  formatBytes,
  formatCount,
  formatDate,
  formatDateTime,
  formatDistance,
  formatDuration,
  formatEta,
  formatRate,
  unitName,
} from "../lib/format";

describe("format", () => {
  it("sizes and speeds in decimal units", () => {
    expect(formatBytes(0)).toBe("0 bytes");
    expect(formatBytes(999)).toBe("999 bytes");
    expect(formatBytes(1_234_000)).toBe("1.2 MB");
    expect(formatBytes(350_400_000)).toBe("350 MB");
    expect(formatBytes(1_045_000_000)).toBe("1.0 GB");
    expect(formatRate(220_000_000)).toBe("220 MB/s");
    expect(formatRate(0)).toBe("—");
  });

  it("time left rounds up and drops zero parts", () => {
    expect(formatEta(0.2)).toBe("1 s");
    expect(formatEta(59)).toBe("59 s");
    expect(formatEta(120)).toBe("2 min");
    expect(formatEta(185)).toBe("3 min 5 s");
    expect(formatEta(3840)).toBe("1 h 4 min");
    expect(formatEta(null)).toBe("—");
  });

  it("workout values", () => {
    expect(formatDuration(2530)).toBe("42:10");
    expect(formatDuration(3723)).toBe("1:02:03");
    expect(formatDistance(850)).toBe("850 m");
    expect(formatDistance(10_234)).toBe("10.23 km");
    expect(formatDistance(null)).toBe("—");
    expect(formatCount(1234567)).toBe("1,234,567");
  });

  it("dates stay in the wall clock they were recorded in", () => {
    expect(formatDate("2024-03-05T23:30:00+09:00")).toBe("Mar 5, 2024");
    expect(formatDateTime("2024-03-05T07:30:00-08:00")).toBe("Mar 5, 2024 07:30");
    expect(formatDate(null)).toBe("—");
  });

  it("days since the epoch both ways", () => {
    expect(dayNumber("1970-01-02")).toBe(1);
    expect(dayNumber("2024-03-05")).toBe(19787);
    expect(dayNumber("")).toBeNull();
    expect(dayNumber("March")).toBeNull();
    expect(dayString(19787)).toBe("2024-03-05");
  });

  it("file names on any system", () => {
    expect(fileName("/home/ada/export.zip")).toBe("export.zip");
    expect(fileName("C:\\Users\\ada\\export.xml")).toBe("export.xml");
  });
});

describe("units", () => {
  it("reads HealthKit's unit strings as people write them", () => {
    expect(unitName("count/min")).toBe("bpm");
    expect(unitName("count")).toBe("");
    expect(unitName("kcal")).toBe("kcal");
    expect(unitName(null)).toBe("");
  });
});
