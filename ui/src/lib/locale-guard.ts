// uPlot builds an Intl.NumberFormat from navigator.language when it loads.
// Under the POSIX locale (LANG=C.UTF-8, common on minimal Linux systems)
// WebKitGTK reports a language tag Intl refuses, and the whole UI would fail
// to load: fall back to English, the UI's own language. Import this first.
export function guardLocale(nav: Navigator = navigator): void {
  try {
    new Intl.NumberFormat(nav.language);
  } catch {
    Object.defineProperty(nav, "language", { value: "en-US", configurable: true });
  }
}

guardLocale();
