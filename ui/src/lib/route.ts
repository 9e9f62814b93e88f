// Draws a route from its GPS points alone (no map tiles): an
// equirectangular projection around the route's middle latitude, scaled to
// fit the box with its proportions kept, north up.

export interface LatLon {
  lat: number;
  lon: number;
}

export interface RouteDrawing {
  /** The SVG path. */
  d: string;
  start: [number, number];
  end: [number, number];
}

/** At most this many points are drawn; more add nothing visible. */
export const MAX_POINTS = 2000;

export function drawRoute(
  points: readonly LatLon[],
  width: number,
  height: number,
  padding = 12,
): RouteDrawing | null {
  const usable = points.filter((p) => Number.isFinite(p.lat) && Number.isFinite(p.lon));
  if (usable.length < 2) return null;
  const step = Math.ceil(usable.length / MAX_POINTS);
  const kept = usable.filter((_, i) => i % step === 0 || i === usable.length - 1);
  const lats = kept.map((p) => p.lat);
  const midLat = ((Math.min(...lats) + Math.max(...lats)) / 2) * (Math.PI / 180);
  const xs = kept.map((p) => p.lon * Math.cos(midLat));
  const ys = kept.map((p) => -p.lat);
  const minX = Math.min(...xs);
  const minY = Math.min(...ys);
  const spanX = Math.max(...xs) - minX;
  const spanY = Math.max(...ys) - minY;
  const innerW = Math.max(1, width - 2 * padding);
  const innerH = Math.max(1, height - 2 * padding);
  const scale = Math.min(innerW / (spanX || 1e-9), innerH / (spanY || 1e-9));
  // Centre the drawing in the box.
  const offX = padding + (innerW - spanX * scale) / 2;
  const offY = padding + (innerH - spanY * scale) / 2;
  const at = (i: number): [number, number] => [
    round(offX + ((xs[i] ?? minX) - minX) * scale),
    round(offY + ((ys[i] ?? minY) - minY) * scale),
  ];
  const coords = kept.map((_, i) => at(i));
  const d = coords.map(([x, y], i) => `${i === 0 ? "M" : "L"}${x} ${y}`).join(" ");
  return { d, start: coords[0] ?? [0, 0], end: coords[coords.length - 1] ?? [0, 0] };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
