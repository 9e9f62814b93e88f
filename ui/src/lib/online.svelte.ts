// The online half's state: the connection, the user picked, an import in
// flight with everything it reported, the history and the interrupted
// uploads offered for resuming. Everything goes through a `Backend`.
import type { CommandError } from "../bindings/CommandError";
import type { Connection } from "../bindings/Connection";
import type { ImportReport } from "../bindings/ImportReport";
import type { Interrupted } from "../bindings/Interrupted";
import type { LedgerSummary } from "../bindings/LedgerSummary";
import type { Method } from "../bindings/Method";
import type { Plan } from "../bindings/Plan";
import type { Progress } from "../bindings/Progress";
import type { Share } from "../bindings/Share";
import type { SavedLogin } from "../bindings/SavedLogin";
import type { UploadRecord } from "../bindings/UploadRecord";
import type { User } from "../bindings/User";
import { SvelteMap } from "svelte/reactivity";
import { asCommandError, type Backend } from "./backend";
import { fold, notStarted, type Sending } from "./upload";

/** What the export to send is: a file, or one the store holds. */
export type ExportRef = { path: string } | { exportId: number };

export interface Running {
  operation: string;
  sending: Sending;
  cancelling: boolean;
}

/** A dry run under way: what it has read so far. */
export interface Planning {
  operation: string;
  key: string;
  done: number;
  total: number | null;
}

/** What goes: only what is new, and the person's filters. */
export interface Chosen {
  delta: boolean;
  share: Share;
}

/** Everything, profile included: what a dry run counts from. */
const EVERYTHING: Share = {
  only: null,
  except: { kinds: [], categories: [] },
  from: null,
  to: null,
  include_me: true,
};

/** The default: only what is new, everything but the profile and clinical records. */
export const NEW_DEFAULT: Chosen = {
  delta: true,
  share: { ...EVERYTHING, include_me: false },
};

function refKey(what: ExportRef, userId: string): string {
  return `${"path" in what ? what.path : `#${what.exportId}`}|${userId}`;
}

let counter = 0;
function operationId(): string {
  counter += 1;
  return `send-${Date.now().toString(36)}-${counter}`;
}

export class Online {
  connection: Connection | null = $state(null);
  saved: SavedLogin | null = $state(null);
  connecting = $state(false);
  users: User[] = $state([]);
  usersTotal = $state(0);
  /** Whether the server has more users for the current search. */
  usersHasNext = $state(false);
  private usersPage = 0;
  private usersSearch = "";
  private usersAsked = 0;
  private usersLoading = false;
  /** Every user seen this session, by id: history rows name them. */
  private known = new SvelteMap<string, User>();
  user: User | null = $state(null);
  running: Running | null = $state(null);
  /** The last import's events folded, kept after it ends for the result. */
  last: Sending | null = $state(null);
  report: ImportReport | null = $state(null);
  /** What the picked user has from this computer, and the dry run of
   * the export for them (for "What to send"). */
  ledger: LedgerSummary | null = $state(null);
  plan: Plan | null = $state(null);
  planKey: string | null = $state(null);
  planning: Planning | null = $state(null);
  history: UploadRecord[] = $state([]);
  interrupted: Interrupted[] = $state([]);
  error: CommandError | null = $state(null);

  constructor(
    private readonly backend: Backend,
    private readonly clock: () => number = Date.now,
  ) {}

  /** At launch: the connection state and any upload to offer resuming. */
  async start(): Promise<void> {
    try {
      const status = await this.backend.connectionStatus();
      this.connection = status.connection;
      this.saved = status.saved;
      this.interrupted = await this.backend.interruptedUploads();
    } catch (e) {
      this.error = asCommandError(e);
    }
  }

  private async connectWith(work: () => Promise<Connection>): Promise<boolean> {
    this.connecting = true;
    this.error = null;
    try {
      this.connection = await work();
      this.user = null;
      await this.searchUsers("");
      return true;
    } catch (e) {
      this.error = asCommandError(e);
      return false;
    } finally {
      this.connecting = false;
    }
  }

  connectLocal(): Promise<boolean> {
    return this.connectWith(() => this.backend.connectLocal());
  }

  /** The password is handed to the backend once and not kept here. */
  connectRemote(
    server: string,
    login: { email: string; password: string } | { apiKey: string } | null,
    insecureHttp = false,
  ): Promise<boolean> {
    const base = insecureHttp ? { server, insecure_http: true } : { server };
    const request =
      login == null
        ? base
        : "apiKey" in login
          ? { ...base, api_key: login.apiKey }
          : { ...base, email: login.email, password: login.password };
    return this.connectWith(() => this.backend.connectRemote(request));
  }

  async disconnect(): Promise<void> {
    await this.backend.disconnect().catch(() => {});
    this.connection = null;
    this.users = [];
    this.user = null;
  }

  async searchUsers(search: string): Promise<void> {
    await this.loadUsers(search.trim(), 1);
  }

  /** The next page of the current search, after the ones shown. */
  async moreUsers(): Promise<void> {
    // While a search is on its way, "more" would add to the old list.
    if (this.usersHasNext && !this.usersLoading) await this.loadUsers(this.usersSearch, this.usersPage + 1);
  }

  private async loadUsers(search: string, pageNumber: number): Promise<void> {
    // Only the latest question's answer counts (a fast typist asks many).
    const asked = ++this.usersAsked;
    this.usersLoading = true;
    try {
      const page = await this.backend.listUsers(search || null, pageNumber);
      if (asked !== this.usersAsked) return;
      for (const u of page.items) this.known.set(u.id, u);
      const fresh = page.items.filter((u) => pageNumber === 1 || !this.users.some((x) => x.id === u.id));
      this.users = pageNumber === 1 ? fresh : [...this.users, ...fresh];
      this.usersTotal = page.total;
      this.usersHasNext = page.has_next;
      this.usersPage = page.page;
      this.usersSearch = search;
    } catch (e) {
      if (asked === this.usersAsked) this.fail(e);
    } finally {
      if (asked === this.usersAsked) this.usersLoading = false;
    }
  }

  /** A user's name as people know it, or their id when not seen this session. */
  userName(id: string): string {
    const u = this.known.get(id);
    return u ? userLabel(u) : id;
  }

  async createUser(firstName: string, lastName: string, email: string): Promise<void> {
    const blank = (s: string) => (s.trim() ? s.trim() : null);
    try {
      const user = await this.backend.createUser({
        first_name: blank(firstName),
        last_name: blank(lastName),
        email: blank(email),
      });
      this.known.set(user.id, user);
      if (!this.users.some((u) => u.id === user.id)) this.usersTotal += 1;
      this.users = [user, ...this.users.filter((u) => u.id !== user.id)];
      this.user = user;
    } catch (e) {
      this.fail(e);
    }
  }

  /** Counts what the export would send to the picked user, by group and
   * day, and reads their ledger: once per export and user, again after
   * an upload (the ledger grew). */
  async prepare(what: ExportRef, force = false): Promise<void> {
    const user = this.user;
    if (!user || this.running) return;
    const key = refKey(what, user.id);
    if (!force && (this.planKey === key || this.planning?.key === key)) return;
    if (this.planning) await this.backend.cancelOperation(this.planning.operation).catch(() => false);
    const operation = operationId();
    this.planning = { operation, key, done: 0, total: null };
    this.plan = null;
    this.planKey = null;
    try {
      const ledger = await this.backend.ledgerSummary(user.id);
      const plan = await this.backend.planImport(
        { operation, user_id: user.id, method: "auto", clean: true, delta: true, share: EVERYTHING, ...refOf(what) },
        (event: Progress) => {
          if (this.planning?.operation !== operation) return;
          if (event.event === "started") this.planning = { ...this.planning, total: event.total };
          if (event.event === "advanced") this.planning = { ...this.planning, done: event.done, total: event.total };
        },
      );
      if (this.planning?.operation !== operation) return;
      this.ledger = ledger;
      this.plan = plan;
      this.planKey = key;
    } catch (e) {
      const error = asCommandError(e);
      if (error.kind !== "cancelled" && this.planning?.operation === operation) this.error = error;
    } finally {
      if (this.planning?.operation === operation) this.planning = null;
    }
  }

  /** Sends the export to the picked user and follows the import. */
  async send(what: ExportRef, method: Method, clean = true, chosen: Chosen = NEW_DEFAULT): Promise<void> {
    const user = this.user;
    if (this.running || !user) return;
    const operation = operationId();
    this.error = null;
    this.report = null;
    this.last = null;
    this.running = { operation, sending: notStarted, cancelling: false };
    if (this.planning) await this.backend.cancelOperation(this.planning.operation).catch(() => false);
    const request = {
      operation,
      user_id: user.id,
      method,
      clean,
      delta: chosen.delta,
      share: chosen.share,
      ...refOf(what),
    };
    try {
      this.report = await this.backend.startImport(request, (event) => {
        if (this.running?.operation === operation) {
          this.running = { ...this.running, sending: fold(this.running.sending, event, this.clock()) };
        }
      });
    } catch (e) {
      const error = asCommandError(e);
      if (error.kind !== "cancelled") this.error = error;
    } finally {
      this.last = this.running?.sending ?? null;
      this.running = null;
      await this.refreshHistory();
    }
    // The ledger may have grown: what is new has changed.
    await this.prepare(what, true);
  }

  /** Goes on with an interrupted upload: same export, same user. */
  async resume(found: Interrupted): Promise<void> {
    const first = found.pieces[0];
    if (!first) return;
    this.user = this.users.find((u) => u.id === first.user_id) ?? { id: first.user_id, created_at: null, first_name: null, last_name: null, email: null, last_synced_at: null };
    await this.send({ path: first.source_path }, "auto", first.cleaned);
  }

  dismissInterrupted(): void {
    this.interrupted = [];
  }

  async cancel(): Promise<void> {
    const running = this.running;
    if (!running || running.cancelling) return;
    this.running = { ...running, cancelling: true };
    await this.backend.cancelOperation(running.operation).catch(() => false);
  }

  async refreshHistory(): Promise<void> {
    try {
      this.history = await this.backend.uploadHistory();
      this.interrupted = await this.backend.interruptedUploads();
    } catch (e) {
      this.fail(e);
    }
  }

  private fail(e: unknown): void {
    this.error = asCommandError(e);
    if (this.error.kind === "not_connected") this.connection = null;
  }
}

function refOf(what: ExportRef): { path: string } | { export_id: number } {
  return "path" in what ? { path: what.path } : { export_id: what.exportId };
}

/** `http://` to a host other than this computer (loopback): a password or
 * key sent there crosses the network unencrypted. */
export function isPlainHttpElsewhere(address: string): boolean {
  const typed = address.trim();
  if (!/^http:\/\//i.test(typed)) return false;
  let host: string;
  try {
    host = new URL(typed).hostname.toLowerCase().replace(/\.$/, "");
  } catch {
    return false;
  }
  const bare = host.replace(/^\[|\]$/g, "");
  const loopback =
    bare === "localhost" || bare.endsWith(".localhost") || bare === "::1" || /^127\.\d+\.\d+\.\d+$/.test(bare);
  return !loopback;
}

/** "Ada Lovelace <ada@example.com>", "Ada Lovelace", the email, or the id. */
export function userLabel(u: Pick<User, "id" | "first_name" | "last_name" | "email">): string {
  const n = [u.first_name, u.last_name].filter((x) => x).join(" ");
  return n ? (u.email ? `${n} <${u.email}>` : n) : (u.email ?? u.id);
}

/** What to do about an error, in plain words, for the ones a person can act on. */
export function advice(error: CommandError): string | null {
  switch (error.kind) {
    case "login":
      return "Check the email and password (or the API key) and connect again.";
    case "network":
      return "Check the address and your network, then try again.";
    case "resumable":
      return "Send it again: it goes on from where it stopped.";
    case "choice":
      return "Nothing was sent. Choose another user or method, and send again.";
    case "server":
      return "The server's own message is above; its administrator can see more in its logs.";
    case "not_connected":
      return "Connect to a server first.";
    case "server_forgot":
      return "Nothing was sent. If the server was reset on purpose, send everything again.";
    default:
      return null;
  }
}
