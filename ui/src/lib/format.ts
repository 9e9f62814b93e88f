// How numbers, sizes, speeds and dates read in the UI. The UI's text is
// English, so numbers are grouped the English way everywhere.

const LOCALE = "en-US";
const integer = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 0 });
const oneDecimal = new Intl.NumberFormat(LOCALE, { maximumFractionDigits: 1 });
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function formatCount(n: number): string {
  return integer.format(n);
}

/** Decimal units, as file managers show sizes: "1.2 GB", "350 MB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "—";
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit += 1;
  }
  const digits = unit === 0 || value >= 100 ? 0 : 1;
  return `${value.toFixed(digits)} ${units[unit]}`;
}

export function formatRate(bytesPerSecond: number): string {
  if (!Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0) return "—";
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** Time left: "12 s", "3 min 5 s", "1 h 4 min". */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "—";
  const s = Math.ceil(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return s % 60 === 0 ? `${m} min` : `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return m % 60 === 0 ? `${h} h` : `${h} h ${m % 60} min`;
}

/** A workout's length: "42:10", "1:02:03". */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "—";
  const total = Math.round(seconds);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const two = (n: number) => n.toString().padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(s)}` : `${m}:${two(s)}`;
}

export function formatDistance(meters: number | null | undefined): string {
  if (meters == null || !Number.isFinite(meters)) return "—";
  if (meters < 1000) return `${integer.format(meters)} m`;
  return `${(meters / 1000).toFixed(2)} km`;
}

export function formatEnergy(kcal: number | null | undefined): string {
  if (kcal == null || !Number.isFinite(kcal)) return "—";
  return `${integer.format(kcal)} kcal`;
}

export function formatBpm(bpm: number | null | undefined): string {
  if (bpm == null || !Number.isFinite(bpm)) return "—";
  return `${integer.format(bpm)} bpm`;
}

export function formatNumber(value: number | null | undefined): string {
  if (value == null || !Number.isFinite(value)) return "—";
  return Math.abs(value) >= 100 ? integer.format(value) : oneDecimal.format(value);
}

/**
 * An RFC 3339 instant as the wall clock it was recorded in ("Mar 5, 2024"),
 * never converted to this computer's zone: a run in Tokyo stays in its day.
 */
export function formatDate(rfc3339: string | null | undefined): string {
  const m = rfc3339?.match(/^(\d{4})-(\d{2})-(\d{2})/);
  if (!m) return "—";
  const [, y, mo, d] = m;
  return `${MONTHS[Number(mo) - 1] ?? mo} ${Number(d)}, ${y}`;
}

/** "Mar 5, 2024 07:30", in the recorded wall clock. */
export function formatDateTime(rfc3339: string | null | undefined): string {
  const time = rfc3339?.match(/T(\d{2}:\d{2})/);
  const date = formatDate(rfc3339);
  return time ? `${date} ${time[1]}` : date;
}

/** `YYYY-MM-DD` → days since 1970-01-01, or null for anything else. */
export function dayNumber(date: string): number | null {
  const m = date.match(/^(\d{4})-(\d{2})-(\d{2})$/);
  if (!m) return null;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  return Number.isNaN(ms) ? null : Math.round(ms / 86_400_000);
}

/** Days since 1970-01-01 → `YYYY-MM-DD`. */
export function dayString(day: number): string {
  return new Date(day * 86_400_000).toISOString().slice(0, 10);
}

/** HealthKit's unit strings as people write them ("count/min" → "bpm"). */
export function unitName(unit: string | null | undefined): string {
  switch (unit) {
    case null:
    case undefined:
    case "count":
      return "";
    case "count/min":
      return "bpm";
    case "degC":
      return "°C";
    case "degF":
      return "°F";
    default:
      return unit;
  }
}

/** The last path component, for either separator. */
export function fileName(path: string): string {
  const parts = path.split(/[\\/]/);
  return parts[parts.length - 1] || path;
}
