import { createHash } from 'node:crypto';
import { signRequest, uriEncode } from './sigv4.js';
import { assertStorageKey, StorageError, type ObjectStorage, type RetentionResult, type StoredObject } from './types.js';

export interface S3StorageOptions {
  /** e.g. http://127.0.0.1:9000 (MinIO) or https://s3.eu-west-1.amazonaws.com */
  readonly endpoint: string;
  readonly bucket: string;
  readonly region: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Key prefix inside the bucket, e.g. `frostgate/`; default none. */
  readonly prefix?: string;
  readonly fetch?: typeof fetch;
}

const RULE_ID = 'frostgate-retention';

function xmlUnescape(s: string): string {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

function xmlEscape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function tag(xml: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([\\s\\S]*?)</${name}>`).exec(xml);
  return m ? xmlUnescape(m[1]!) : undefined;
}

/**
 * The S3 API (path-style requests, SigV4) behind ObjectStorage: MinIO in deployments, any
 * S3-compatible store. Retention is a bucket lifecycle rule (`Expiration.Days` on the prefix),
 * so the store itself expires old results.
 */
export class S3Storage implements ObjectStorage {
  readonly kind = 's3';
  private readonly endpoint: URL;
  private readonly fetchFn: typeof fetch;
  private readonly keyPrefix: string;

  constructor(private readonly opts: S3StorageOptions) {
    this.endpoint = new URL(opts.endpoint);
    this.fetchFn = opts.fetch ?? fetch;
    this.keyPrefix = opts.prefix ?? '';
    if (this.keyPrefix) assertStorageKey(this.keyPrefix, { prefix: true });
  }

  locate(key: string): string {
    return `s3://${this.opts.bucket}/${this.keyPrefix}${key}`;
  }

  private url(key: string | undefined, query: Record<string, string> = {}): URL {
    const base = this.endpoint.pathname.replace(/\/$/, '');
    const objectPath = key === undefined ? '' : `/${uriEncode(`${this.keyPrefix}${key}`, true)}`;
    const url = new URL(`${this.endpoint.origin}${base}/${uriEncode(this.opts.bucket)}${objectPath}`);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    return url;
  }

  private async send(method: string, url: URL, body: Uint8Array = new Uint8Array(), headers: Record<string, string> = {}): Promise<Response> {
    const signed = signRequest({ method, url, headers, body }, { accessKeyId: this.opts.accessKeyId, secretAccessKey: this.opts.secretAccessKey, region: this.opts.region });
    delete signed.host;
    try {
      return await this.fetchFn(url, { method, headers: signed, ...(method === 'GET' || method === 'HEAD' || method === 'DELETE' ? {} : { body: Buffer.from(body) }) });
    } catch (cause) {
      throw new StorageError('storage_request_failed', `S3 ${method} ${url.pathname} failed: ${(cause as Error).message}`, { cause });
    }
  }

  private async expectOk(res: Response, what: string): Promise<void> {
    if (res.ok) return;
    const text = await res.text().catch(() => '');
    throw new StorageError('storage_request_failed', `S3 ${what}: HTTP ${res.status} ${tag(text, 'Code') ?? ''} ${tag(text, 'Message') ?? ''}`.trim());
  }

  async put(key: string, bytes: Uint8Array): Promise<void> {
    assertStorageKey(key);
    const res = await this.send('PUT', this.url(key), bytes, { 'content-type': 'application/octet-stream' });
    await this.expectOk(res, `PUT ${key}`);
    await res.arrayBuffer();
  }

  async get(key: string): Promise<Buffer | undefined> {
    assertStorageKey(key);
    const res = await this.send('GET', this.url(key));
    if (res.status === 404) {
      await res.arrayBuffer();
      return undefined;
    }
    await this.expectOk(res, `GET ${key}`);
    return Buffer.from(await res.arrayBuffer());
  }

  async list(prefix: string): Promise<StoredObject[]> {
    assertStorageKey(prefix, { prefix: true });
    const out: StoredObject[] = [];
    let token: string | undefined;
    do {
      const res = await this.send('GET', this.url(undefined, { 'list-type': '2', prefix: `${this.keyPrefix}${prefix}`, ...(token ? { 'continuation-token': token } : {}) }));
      await this.expectOk(res, `LIST ${prefix}`);
      const xml = await res.text();
      for (const m of xml.matchAll(/<Contents>([\s\S]*?)<\/Contents>/g)) {
        const key = tag(m[1]!, 'Key') ?? '';
        out.push({ key: key.slice(this.keyPrefix.length), size: Number(tag(m[1]!, 'Size') ?? 0), modifiedAt: new Date(tag(m[1]!, 'LastModified') ?? 0) });
      }
      token = tag(xml, 'IsTruncated') === 'true' ? tag(xml, 'NextContinuationToken') : undefined;
    } while (token);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    assertStorageKey(key);
    const res = await this.send('DELETE', this.url(key));
    if (res.status !== 404) await this.expectOk(res, `DELETE ${key}`);
    await res.arrayBuffer();
  }

  /** The lifecycle document enforcing retention on one prefix. */
  lifecycleXml(prefix: string, days: number): string {
    return (
      '<?xml version="1.0" encoding="UTF-8"?>' +
      '<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
      `<Rule><ID>${RULE_ID}</ID><Filter><Prefix>${xmlEscape(`${this.keyPrefix}${prefix}`)}</Prefix></Filter><Status>Enabled</Status>` +
      `<Expiration><Days>${days}</Days></Expiration></Rule></LifecycleConfiguration>`
    );
  }

  /** Puts the bucket lifecycle rule (idempotent; replaces the bucket's lifecycle configuration). */
  async enforceRetention(prefix: string, days: number): Promise<RetentionResult> {
    if (!Number.isInteger(days) || days < 1) throw new RangeError('S3 lifecycle expiration needs whole days >= 1');
    const body = Buffer.from(this.lifecycleXml(prefix, days), 'utf8');
    const md5 = createHash('md5').update(body).digest('base64');
    const res = await this.send('PUT', this.url(undefined, { lifecycle: '' }), body, { 'content-md5': md5, 'content-type': 'application/xml' });
    await this.expectOk(res, 'PUT lifecycle');
    await res.arrayBuffer();
    return { removed: [], mechanism: 'lifecycle' };
  }

  /** The bucket's lifecycle configuration XML, or undefined when it has none. */
  async lifecycle(): Promise<string | undefined> {
    const res = await this.send('GET', this.url(undefined, { lifecycle: '' }));
    if (res.status === 404) {
      await res.arrayBuffer();
      return undefined;
    }
    await this.expectOk(res, 'GET lifecycle');
    return res.text();
  }
}
