import { describe, expect, it } from "vitest";
import { guardLocale } from "../lib/locale-guard";

describe("the locale guard", () => {
  it("replaces a language tag Intl refuses (WebKitGTK under LANG=C) with English", () => {
    const nav = { language: "c.utf-8" } as unknown as Navigator;
    guardLocale(nav);
    expect(nav.language).toBe("en-US");
  });

  it("keeps a valid one", () => {
    const nav = { language: "fr-FR" } as unknown as Navigator;
    guardLocale(nav);
    expect(nav.language).toBe("fr-FR");
  });
});
