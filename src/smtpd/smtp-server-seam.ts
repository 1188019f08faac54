// Every use of smtp-server's private members, in one place. smtp-server is pinned to
// exactly 3.21.6 (package.json); smtp-server-seam.test.ts drives the real library
// through each member below and fails when one disappears or changes meaning, and
// when one of the canned reply texts we recognise changes.
//
// What public API already covers is not here: options (size, maxRecipients,
// disabledCommands, socketTimeout, authMethods, resolver…), callbacks (onConnect,
// onSecure, onAuth, onMailFrom, onRcptTo, onData, onClose), the 'connect' event,
// and the public methods init(), upgrade(), send(), close(), connect() that server.ts
// overrides by subclassing. The rest has no public way:
import { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { SMTPStream } from 'smtp-server/lib/smtp-stream.js';
import type net from 'node:net';
import type tls from 'node:tls';

type Done = (err?: Error | null) => void;
/**
 * Sees every command line before smtp-server does. True: hand it on to the library. False: the
 * filter answered it (and resumes the parser with `callback`), or holds it to dispatch() later.
 */
export type CommandFilter = (command: Buffer, callback: (() => void) | undefined) => boolean;

export class SeamConnection extends SMTPConnection {
  /** Installed by the guard (listener-connection.ts) before init(); absent: lines go straight to the library. */
  commandFilter: CommandFilter | undefined;

  /**
   * `_createParser()`: smtp-server has no option for the command parser; this one is called from
   * the constructor and again for the TLS session after STARTTLS, so it may use only prototype
   * methods. Its `oncommand` is where the library's own parser calls `_onCommand()`: the guard
   * sees each line first (smtp-server has no command hook).
   */
  override _createParser(): SMTPStream {
    const parser = this.newParser(this._server.options.maxCommandLength);
    parser.oncommand = (command: Buffer, callback?: () => void) => this.dispatch(command, callback);
    parser.on('error', (err: Error) => this.send(421, 'Error: ' + err.message));
    return parser;
  }

  /** The command parser of this connection; server.ts returns our SmtpdStream. */
  protected newParser(maxCommandLength: number | undefined): SMTPStream {
    return new SMTPStream(maxCommandLength === undefined ? {} : { maxCommandLength });
  }

  /** A line through the guard, then `_onCommand()` (the library's command dispatch, no public way in). */
  dispatch(command: Buffer, callback?: () => void): void {
    if (!this.commandFilter || this.commandFilter(command, callback)) this._onCommand(command, callback);
  }

  /** `_setListeners()`: pipes the socket into the parser; init() without the library's 100 ms pause needs it. */
  protected startReading(ready: () => void): void {
    this._setListeners(ready);
  }

  /** `_whenWritable()`: resume the parser once the replies are flushed, as the library's own handlers do (its socket is private too). */
  whenWritable(next: () => void): void {
    this._whenWritable(next);
  }

  /**
   * `_upgrading`: a STARTTLS handshake is under way (replies are dropped, lines discarded). upgrade()
   * shows the start, but a failed handshake has no public end short of the socket closing.
   */
  get upgrading(): boolean { return this._upgrading; }

  /** `_nextHandler`: the next line continues an AUTH exchange (SASL), it is not a command; the library says so nowhere else. */
  get authContinues(): boolean { return !!this._nextHandler; }

  /**
   * `_handlerPending`: a command handler has not called back (ours: onAuth, onMailFrom, onRcptTo;
   * or the library's own). Counting our callbacks would miss the library's.
   */
  get handlerPending(): boolean { return this._handlerPending; }

  /** `_dataStream`: a DATA phase is open (message arriving, or waiting for onData's answer). */
  get inData(): boolean { return !!this._dataStream; }

  /** `_dataStream` and `_parser._dataMode`: the message is in, the client waits for our answer (spool fsync). */
  get awaitingDataReply(): boolean {
    const parser = this._parser;
    return !!this._dataStream && !!parser && !parser._dataMode;
  }

  /** `_closing`, `_closed`: close() was called or the socket is gone; onClose only comes a turn later. */
  get ended(): boolean { return this._closing || this._closed; }

  /** `_socket`: the socket replies are written to (the TLS one after STARTTLS); for cork() and destroy(). */
  get socket(): net.Socket | tls.TLSSocket { return this._socket; }
}

/**
 * smtp-server's SMTPStream with the DATA phase handed to `feedData` (data-stream.ts). The library's
 * `_write()` calls `_feedDataStream(chunk, done)` for every chunk in DATA mode; there is no option
 * for another DATA parser.
 */
export abstract class SeamStream extends SMTPStream {
  override _feedDataStream(chunk: Buffer, done: Done): void {
    this.feedData(chunk, done);
  }

  protected abstract feedData(chunk: Buffer, done: Done): void;

  /** `_dataStream`: the message stream startDataMode() returned to smtp-server. */
  protected get messageStream(): NonNullable<SMTPStream['_dataStream']> { return this._dataStream!; }

  /** `_countDataBytes(n)`: keeps `dataBytes` and the stream's `sizeExceeded` right. */
  protected countDataBytes(n: number): void { this._countDataBytes(n); }

  /** `_endDataMode(false, rest, done)`: ends the message and goes back to commands with the bytes after the dot. */
  protected endDataMode(rest: Buffer, done: Done): void { this._endDataMode(false, rest, done); }
}

/** smtp-server's own replies that we reword (guard.ts), by what they mean. */
export type LibraryReply =
  | 'timeout' | 'too many unrecognized' | 'unrecognized' | 'line too long' | 'shutting down'
  | 'bad sender' | 'bad recipient' | 'too many recipients' | 'size exceeded' | 'ok';

/**
 * send(code, text) is the only sign of which canned reply smtp-server gives (it passes no
 * reason). The texts are 3.21.6's; the seam test makes the real library say each one.
 * 'Error: Command line too long' is the parser error our _createParser() reports. Its 538 "Error:
 * Must issue a STARTTLS command first" is not here: with allowInsecureAuth (listener.ts) smtp-server
 * never sends it, the guard refuses AUTH before TLS itself.
 */
const TEXTS: ReadonlyMap<string, LibraryReply> = new Map([
  ['Timeout - closing connection', 'timeout'],
  ['Error: too many unrecognized commands', 'too many unrecognized'],
  ['Error: command not recognized', 'unrecognized'],
  ['Error: Command line too long', 'line too long'],
  ['Server shutting down', 'shutting down'],
  ['Error: Bad sender address syntax', 'bad sender'],
  ['Error: Bad recipient address syntax', 'bad recipient'],
  ['Error: too many recipients', 'too many recipients'],
  ['Accepted', 'ok'], ['Flushed', 'ok'], ['OK', 'ok'],
]);

export function libraryReply(code: number, text: string): LibraryReply | undefined {
  if (code === 552 && text.startsWith('Error: message exceeds fixed maximum message size')) return 'size exceeded';
  return TEXTS.get(text);
}
