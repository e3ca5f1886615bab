import type { SocketLike } from '../lib/chatClient';
import type { ChatMessage } from '../lib/types';

/** A scriptable stand-in for the browser WebSocket. */
export class FakeSocket implements SocketLike {
  static instances: FakeSocket[] = [];
  static reset() {
    FakeSocket.instances = [];
  }
  static last(): FakeSocket {
    const s = FakeSocket.instances[FakeSocket.instances.length - 1];
    if (!s) throw new Error('no socket created');
    return s;
  }
  static readonly CONNECTING = 0;
  static readonly OPEN = 1;
  static readonly CLOSING = 2;
  static readonly CLOSED = 3;

  readyState = 0;
  onopen: SocketLike['onopen'] = null;
  onclose: SocketLike['onclose'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onerror: SocketLike['onerror'] = null;
  sent: string[] = [];
  closedByClient: { code?: number; reason?: string } | null = null;

  constructor(public url: string) {
    FakeSocket.instances.push(this);
  }
  get since(): string | null {
    return new URL(this.url).searchParams.get('since');
  }
  send(data: string) {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open');
    this.sent.push(data);
  }
  close(code?: number, reason?: string) {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }
  // ---- server side ----
  open() {
    this.readyState = 1;
    this.onopen?.({});
  }
  frame(obj: unknown) {
    this.onmessage?.({ data: JSON.stringify(obj) });
  }
  drop(code = 1006, reason = '') {
    this.readyState = 3;
    this.onclose?.({ code, reason, wasClean: code !== 1006 });
  }
}

let clock = Date.parse('2026-11-21T10:00:00.000Z');
export function msg(seq: number, over: Partial<ChatMessage> = {}): ChatMessage {
  clock += 1000;
  return {
    messageId: `m-${seq}-${over.timestamp ?? clock}`,
    roomId: 'global',
    type: 'chat',
    userId: 'alice',
    username: 'Alice',
    content: `message ${seq}`,
    timestamp: new Date(clock).toISOString(),
    seq,
    ...over,
  };
}
/** Same message (same id), as a server would replay it. */
export function replay(m: ChatMessage): ChatMessage {
  return { ...m };
}
