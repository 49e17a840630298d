import { escapeHtml, type PageDevice } from './html.js';

const COL = 170;
const DEVICE_W = 120;
const DEVICE_H = 44;
const NET_W = 150;
const NET_H = 40;
const ROW_Y = { multi: 20, net: 140, single: 260 } as const;

/**
 * The lab drawn as inline SVG (no script, no external resource): networks in the middle row,
 * devices attached to several networks (routers) above, devices on one network below it; a line
 * per interface, labelled with its address.
 */
export function topologySvg(devices: readonly PageDevice[], networks: ReadonlyArray<{ name: string; cidr: string | undefined }>): string {
  const netNames = [...new Set([...networks.map((n) => n.name), ...devices.flatMap((d) => d.addresses.map((a) => a.network))])];
  const cidrOf = new Map(networks.map((n) => [n.name, n.cidr]));
  const multi = devices.filter((d) => new Set(d.addresses.map((a) => a.network)).size !== 1);
  const single = netNames.flatMap((n) => devices.filter((d) => !multi.includes(d) && d.addresses[0]?.network === n));
  const columns = Math.max(netNames.length, multi.length, single.length, 1);
  const width = columns * COL + 20;
  const height = ROW_Y.single + DEVICE_H + 30;
  const centre = (i: number, count: number) => 10 + ((columns * COL) / count) * (i + 0.5);

  const netX = new Map(netNames.map((n, i) => [n, centre(i, netNames.length)]));
  const place = new Map<PageDevice, { x: number; y: number }>();
  multi.forEach((d, i) => place.set(d, { x: centre(i, multi.length), y: ROW_Y.multi }));
  // Hosts sit under their own network where there is room, else spread evenly.
  single.forEach((d, i) =>
    place.set(d, { x: single.length === netNames.length ? netX.get(d.addresses[0]!.network)! : centre(i, single.length), y: ROW_Y.single }),
  );

  const parts: string[] = [];
  for (const d of devices) {
    const p = place.get(d)!;
    for (const a of d.addresses) {
      const nx = netX.get(a.network)!;
      const fromY = p.y === ROW_Y.multi ? p.y + DEVICE_H : p.y;
      const toY = p.y === ROW_Y.multi ? ROW_Y.net : ROW_Y.net + NET_H;
      const lx = (p.x + nx) / 2;
      const ly = (fromY + toY) / 2;
      parts.push(`<line class="link" x1="${p.x}" y1="${fromY}" x2="${nx}" y2="${toY}" stroke="#64748b" stroke-width="2"/>`);
      parts.push(`<text class="addr" x="${lx + 4}" y="${ly}" font-size="11" fill="#cbd5e1">${escapeHtml(a.address)}</text>`);
    }
  }
  for (const n of netNames) {
    const x = netX.get(n)!;
    parts.push(
      `<g class="network" data-network="${escapeHtml(n)}"><rect x="${x - NET_W / 2}" ` +
        `y="${ROW_Y.net}" width="${NET_W}" height="${NET_H}" rx="20" fill="#0e7490" stroke="#22d3ee"/>` +
        `<text x="${x}" y="${ROW_Y.net + 17}" text-anchor="middle" font-size="13" fill="#ecfeff">${escapeHtml(n)}</text>` +
        `<text x="${x}" y="${ROW_Y.net + 32}" text-anchor="middle" font-size="11" fill="#a5f3fc">${escapeHtml(cidrOf.get(n) ?? '')}</text></g>`,
    );
  }
  for (const d of devices) {
    const p = place.get(d)!;
    const fill = d.kind === 'router' ? '#7c2d12' : '#1e3a8a';
    parts.push(
      `<g class="device" data-device="${escapeHtml(d.name)}"><rect x="${p.x - DEVICE_W / 2}" ` +
        `y="${p.y}" width="${DEVICE_W}" height="${DEVICE_H}" rx="6" fill="${fill}" stroke="#e2e8f0"/>` +
        `<text x="${p.x}" y="${p.y + 19}" text-anchor="middle" font-size="14" font-weight="bold" fill="#f8fafc">${escapeHtml(d.name)}</text>` +
        `<text x="${p.x}" y="${p.y + 35}" text-anchor="middle" font-size="11" fill="#cbd5e1">${d.kind}</text></g>`,
    );
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="Lab topology" viewBox="0 0 ${width} ${height}" width="100%">${parts.join('')}</svg>`;
}
