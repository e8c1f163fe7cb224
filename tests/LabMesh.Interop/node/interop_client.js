#!/usr/bin/env node
'use strict';
/**
 * The gRPC interop test cases, client side, on Node's @grpc/grpc-js, against any
 * grpc.testing.TestService server (LabMesh's in particular).
 *
 * Usage: node interop_client.js --server_host H --server_port P --test_case NAME[,NAME...]|all
 *            [--use_tls] [--server_host_override NAME] [--ca_file CA.pem] [--proto_root DIR]
 * Exits 0 when every case passed; otherwise prints "FAILED <case>: <reason>" to stderr and exits 1
 * (2 for bad arguments, 3 for a broken setup).
 *
 * What grpc-js cannot show, and so is not checked: a received message's compressed flag and the
 * response's grpc-encoding (its compression filter consumes both). server_compressed_* therefore
 * check that compressed and uncompressed responses arrive intact, as the grpcio client does.
 */

const fs = require('fs');
const protos = require('./interop_protos');

const USAGE = `usage: node interop_client.js --server_host H --server_port P --test_case NAME[,NAME...]|all
           [--use_tls] [--server_host_override NAME] [--ca_file CA.pem] [--proto_root DIR]`;

const { grpc, protoLoader } = protos.requirePackages();
const { status: Status } = grpc;

const LARGE_REQUEST = 271828;
const LARGE_RESPONSE = 314159;
const REQUEST_SIZES = [27182, 8, 1828, 45904];
const RESPONSE_SIZES = [31415, 9, 2653, 58979];
const ECHO_INITIAL_KEY = 'x-grpc-test-echo-initial';
const ECHO_INITIAL_VALUE = 'test_initial_metadata_value';
const ECHO_TRAILING_KEY = 'x-grpc-test-echo-trailing-bin';
const ECHO_TRAILING_VALUE = Buffer.from([0xab, 0xab, 0xab]);
const SPECIAL_MESSAGE = '\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \u{1f608}\t\n';
const CALL_TIMEOUT_MS = 30000;
const CASE_TIMEOUT_MS = 60000;
// grpc-js reads a number passed as a write's "encoding" as write flags; 2 is NoCompress (not exported).
const WRITE_FLAG_NO_COMPRESS = 2;

const INTEROP_CASES = [
  'empty_unary', 'large_unary', 'client_streaming', 'server_streaming', 'ping_pong', 'empty_stream',
  'cancel_after_begin', 'cancel_after_first_response', 'timeout_on_sleeping_server',
  'status_code_and_message', 'special_status_message', 'custom_metadata',
  'unimplemented_method', 'unimplemented_service',
  'client_compressed_unary', 'server_compressed_unary', 'client_compressed_streaming', 'server_compressed_streaming',
];

class CaseFailed extends Error {}

function check(condition, message) {
  if (!condition) {
    throw new CaseFailed(message);
  }
}

const statusName = (code) => Object.keys(Status).find((name) => Status[name] === code) ?? String(code);
const escape = (text) => JSON.stringify(text);
const deadline = (ms = CALL_TIMEOUT_MS) => ({ deadline: Date.now() + ms });
const zeros = (size) => ({ body: Buffer.alloc(size) });
const largeRequest = (fields = {}) => ({ response_size: LARGE_RESPONSE, payload: zeros(LARGE_REQUEST), ...fields });
const outputRequest = (responseSize, requestSize) => ({ response_parameters: [{ size: responseSize }], payload: zeros(requestSize) });

function checkPayload(payload, size, what) {
  check(payload, `${what} has no payload`);
  const body = payload.body ?? Buffer.alloc(0);
  check(body.length === size, `${what} payload is ${body.length} bytes, expected ${size}`);
  check(body.every((byte) => byte === 0), `${what} payload is not all zeros`);
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new CaseFailed(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** An error with a status (grpc-js's ServiceError), or a failure naming what happened instead. */
function expectStatus(outcome, code, what) {
  if (outcome.error === null) {
    throw new CaseFailed(`${what} succeeded, expected ${statusName(code)}`);
  }
  check(outcome.error.code === code,
    `${what} ended ${statusName(outcome.error.code)} (${escape(outcome.error.details)}), expected ${statusName(code)}`);
  return outcome.error;
}

function requireOk(outcome, what) {
  if (outcome.error !== null) {
    throw new CaseFailed(`${what} ended ${statusName(outcome.error.code)} (${escape(outcome.error.details)})`);
  }
  return outcome;
}

/**
 * Watches a call to its end: response headers, messages, and the final status with trailers.
 * grpc-js delivers the callback (unary, client streaming) or the 'error'/'end' events before
 * 'status', so everything is known once `done` resolves.
 */
class CallWatcher {
  constructor(call) {
    this.call = call;
    this.headers = null;
    this.messages = [];
    this.waiters = [];
    this.response = null;
    this.error = null;
    this.ended = false;
    this.status = null;
    this.done = new Promise((resolve) => {
      call.on('metadata', (metadata) => { this.headers = metadata; });
      call.on('status', (status) => {
        this.status = status;
        // A readable stream may still hold messages or its 'end'; let them through first.
        setImmediate(() => {
          this.ended = true;
          this.flush();
          resolve(this);
        });
      });
    });
    if (typeof call.on === 'function' && typeof call.read === 'function') {
      call.on('data', (message) => { this.messages.push(message); this.flush(); });
      call.on('end', () => { this.ended = true; this.flush(); });
      call.on('error', (error) => { this.error = error; this.flush(); });
    }
  }

  /** Callback for unary and client-streaming calls. */
  static callback(holder) {
    return (error, response) => {
      if (error) {
        holder.watcher.error = error;
      } else {
        holder.watcher.response = response;
      }
    };
  }

  flush() {
    while (this.waiters.length > 0) {
      if (this.messages.length > 0) {
        this.waiters.shift().resolve(this.messages.shift());
      } else if (this.error !== null) {
        this.waiters.shift().reject(this.error);
      } else if (this.ended) {
        this.waiters.shift().resolve(null);
      } else {
        return;
      }
    }
  }

  /** The next message, null at the end of the stream; rejects with the call's error. */
  next(what) {
    const promise = new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.flush();
    });
    return withTimeout(promise, CALL_TIMEOUT_MS + 5000, what);
  }

  finished(what) {
    return withTimeout(this.done, CALL_TIMEOUT_MS + 5000, what);
  }
}

/** Starts a unary or client-streaming call and returns its watcher. */
function startWithCallback(start) {
  const holder = {};
  holder.watcher = new CallWatcher(start(CallWatcher.callback(holder)));
  return holder.watcher;
}

function writeAll(call, requests) {
  for (const request of requests) {
    call.write(request);
  }
  call.end();
}

class Client {
  constructor(makeClient) {
    this.stub = makeClient('TestService', {});
    this.unimplementedStub = makeClient('UnimplementedService', {});
    this.gzipStub = makeClient('TestService', { 'grpc.default_compression_algorithm': grpc.compressionAlgorithms.gzip });
  }

  close() {
    for (const stub of [this.stub, this.unimplementedStub, this.gzipStub]) {
      stub.close();
    }
  }

  unary(method, request, { stub = this.stub, metadata = new grpc.Metadata(), options = deadline() } = {}) {
    return startWithCallback((callback) => stub[method](request, metadata, options, callback)).finished(method);
  }

  clientStreaming(requests, { stub = this.stub, metadata = new grpc.Metadata(), flags = [] } = {}) {
    return startWithCallback((callback) => {
      const call = stub.StreamingInputCall(metadata, deadline(), callback);
      requests.forEach((request, index) => call.write(request, flags[index]));
      call.end();
      return call;
    }).finished('StreamingInputCall');
  }

  serverStreaming(request) {
    return new CallWatcher(this.stub.StreamingOutputCall(request, new grpc.Metadata(), deadline())).finished('StreamingOutputCall');
  }

  duplex({ metadata = new grpc.Metadata(), options = deadline() } = {}) {
    const call = this.stub.FullDuplexCall(metadata, options);
    return { call, watcher: new CallWatcher(call) };
  }

  async empty_unary() {
    const outcome = requireOk(await this.unary('EmptyCall', {}), 'EmptyCall');
    check(outcome.response !== null && outcome.response !== undefined, 'EmptyCall returned no response');
  }

  async large_unary() {
    const outcome = requireOk(await this.unary('UnaryCall', largeRequest()), 'UnaryCall');
    checkPayload(outcome.response.payload, LARGE_RESPONSE, 'UnaryCall response');
  }

  async client_streaming() {
    const outcome = requireOk(await this.clientStreaming(REQUEST_SIZES.map((size) => ({ payload: zeros(size) }))), 'StreamingInputCall');
    check(outcome.response.aggregated_payload_size === 74922,
      `aggregated_payload_size is ${outcome.response.aggregated_payload_size}, expected 74922`);
  }

  async server_streaming() {
    const outcome = requireOk(await this.serverStreaming({ response_parameters: RESPONSE_SIZES.map((size) => ({ size })) }), 'StreamingOutputCall');
    const sizes = outcome.messages.map((message) => message.payload?.body?.length ?? 0);
    check(JSON.stringify(sizes) === JSON.stringify(RESPONSE_SIZES), `response sizes are [${sizes}], expected [${RESPONSE_SIZES}]`);
    outcome.messages.forEach((message, index) => checkPayload(message.payload, RESPONSE_SIZES[index], `response ${index}`));
  }

  async ping_pong() {
    const { call, watcher } = this.duplex();
    for (let index = 0; index < REQUEST_SIZES.length; index++) {
      call.write(outputRequest(RESPONSE_SIZES[index], REQUEST_SIZES[index]));
      const response = await watcher.next(`response ${index}`);
      check(response !== null, `the stream ended after ${index} responses, expected 4`);
      checkPayload(response.payload, RESPONSE_SIZES[index], `response ${index}`);
    }
    call.end();
    check(await watcher.next('the end of the stream') === null, 'more than four responses');
    requireOk(await watcher.finished('FullDuplexCall'), 'FullDuplexCall');
  }

  async empty_stream() {
    const { call, watcher } = this.duplex();
    call.end();
    const outcome = requireOk(await watcher.finished('FullDuplexCall'), 'FullDuplexCall');
    check(outcome.messages.length === 0, `${outcome.messages.length} responses on an empty stream`);
  }

  async cancel_after_begin() {
    const watcher = startWithCallback((callback) => this.stub.StreamingInputCall(new grpc.Metadata(), deadline(), callback));
    watcher.call.cancel();
    expectStatus(await watcher.finished('StreamingInputCall'), Status.CANCELLED, 'StreamingInputCall cancelled after begin');
  }

  async cancel_after_first_response() {
    const { call, watcher } = this.duplex();
    call.write(outputRequest(31415, 27182));
    const response = await watcher.next('the first response');
    check(response !== null, 'the stream ended before the first response');
    checkPayload(response.payload, 31415, 'the first response');
    call.cancel();
    expectStatus(await watcher.finished('FullDuplexCall'), Status.CANCELLED, 'FullDuplexCall cancelled after the first response');
  }

  async timeout_on_sleeping_server() {
    const { call, watcher } = this.duplex({ options: deadline(1) });
    call.write({ payload: zeros(27182) });
    expectStatus(await watcher.finished('FullDuplexCall'), Status.DEADLINE_EXCEEDED, 'FullDuplexCall with a 1 ms deadline');
  }

  async status_code_and_message() {
    const message = 'test status message';
    const responseStatus = { code: 2, message };
    const unary = expectStatus(await this.unary('UnaryCall', { response_status: responseStatus }), Status.UNKNOWN, 'UnaryCall with response_status');
    check(unary.details === message, `UnaryCall status message is ${escape(unary.details)}, expected ${escape(message)}`);

    const { call, watcher } = this.duplex();
    writeAll(call, [{ response_status: responseStatus }]);
    const duplex = expectStatus(await watcher.finished('FullDuplexCall'), Status.UNKNOWN, 'FullDuplexCall with response_status');
    check(duplex.details === message, `FullDuplexCall status message is ${escape(duplex.details)}, expected ${escape(message)}`);
  }

  async special_status_message() {
    const error = expectStatus(await this.unary('UnaryCall', { response_status: { code: 2, message: SPECIAL_MESSAGE } }),
      Status.UNKNOWN, 'UnaryCall with a special response_status message');
    check(error.details === SPECIAL_MESSAGE, `status message is ${escape(error.details)}, expected ${escape(SPECIAL_MESSAGE)}`);
  }

  async custom_metadata() {
    const metadata = () => {
      const result = new grpc.Metadata();
      result.add(ECHO_INITIAL_KEY, ECHO_INITIAL_VALUE);
      result.add(ECHO_TRAILING_KEY, ECHO_TRAILING_VALUE);
      return result;
    };
    const checkEcho = (outcome, what) => {
      const initial = outcome.headers?.get(ECHO_INITIAL_KEY) ?? [];
      check(initial.length === 1 && initial[0] === ECHO_INITIAL_VALUE,
        `${what}: response headers ${ECHO_INITIAL_KEY} are ${escape(initial)}, expected ["${ECHO_INITIAL_VALUE}"]`);
      const trailing = outcome.status?.metadata?.get(ECHO_TRAILING_KEY) ?? [];
      check(trailing.length === 1 && Buffer.isBuffer(trailing[0]) && trailing[0].equals(ECHO_TRAILING_VALUE),
        `${what}: trailers ${ECHO_TRAILING_KEY} are [${trailing.map((v) => (Buffer.isBuffer(v) ? v.toString('hex') : escape(v)))}], expected [ababab]`);
    };

    const unary = requireOk(await this.unary('UnaryCall', largeRequest(), { metadata: metadata() }), 'UnaryCall');
    checkPayload(unary.response.payload, LARGE_RESPONSE, 'UnaryCall response');
    checkEcho(unary, 'UnaryCall');

    const { call, watcher } = this.duplex({ metadata: metadata() });
    writeAll(call, [{ response_parameters: [{ size: LARGE_RESPONSE }], payload: zeros(LARGE_REQUEST) }]);
    const duplex = requireOk(await watcher.finished('FullDuplexCall'), 'FullDuplexCall');
    check(duplex.messages.length === 1, `FullDuplexCall sent ${duplex.messages.length} responses, expected 1`);
    checkPayload(duplex.messages[0].payload, LARGE_RESPONSE, 'FullDuplexCall response');
    checkEcho(duplex, 'FullDuplexCall');
  }

  async unimplemented_method() {
    expectStatus(await this.unary('UnimplementedCall', {}), Status.UNIMPLEMENTED, 'TestService/UnimplementedCall');
  }

  async unimplemented_service() {
    expectStatus(await this.unary('UnimplementedCall', {}, { stub: this.unimplementedStub }),
      Status.UNIMPLEMENTED, 'UnimplementedService/UnimplementedCall');
  }

  async client_compressed_unary() {
    const expectCompressed = largeRequest({ expect_compressed: { value: true } });
    expectStatus(await this.unary('UnaryCall', expectCompressed), Status.INVALID_ARGUMENT, 'the uncompressed probe with expect_compressed');
    // The gzip channel compresses every message it sends (grpc-encoding: gzip).
    const compressed = requireOk(await this.unary('UnaryCall', expectCompressed, { stub: this.gzipStub }), 'the compressed request');
    checkPayload(compressed.response.payload, LARGE_RESPONSE, 'the response to the compressed request');
    const plain = requireOk(await this.unary('UnaryCall', largeRequest({ expect_compressed: { value: false } })), 'the uncompressed request');
    checkPayload(plain.response.payload, LARGE_RESPONSE, 'the response to the uncompressed request');
  }

  async server_compressed_unary() {
    for (const compressed of [true, false]) {
      const outcome = requireOk(await this.unary('UnaryCall', largeRequest({ response_compressed: { value: compressed } })),
        `UnaryCall with response_compressed=${compressed}`);
      checkPayload(outcome.response.payload, LARGE_RESPONSE, `the response with response_compressed=${compressed}`);
    }
  }

  async client_compressed_streaming() {
    const first = { expect_compressed: { value: true }, payload: zeros(27182) };
    expectStatus(await this.clientStreaming([first]), Status.INVALID_ARGUMENT, 'the uncompressed probe with expect_compressed');
    // On the gzip channel the first message is compressed and the second opts out per message.
    const second = { expect_compressed: { value: false }, payload: zeros(45904) };
    const outcome = requireOk(await this.clientStreaming([first, second], { stub: this.gzipStub, flags: [undefined, WRITE_FLAG_NO_COMPRESS] }),
      'the compressed StreamingInputCall');
    check(outcome.response.aggregated_payload_size === 73086,
      `aggregated_payload_size is ${outcome.response.aggregated_payload_size}, expected 73086`);
  }

  async server_compressed_streaming() {
    const outcome = requireOk(await this.serverStreaming({
      response_parameters: [{ size: 31415, compressed: { value: true } }, { size: 92653, compressed: { value: false } }],
    }), 'StreamingOutputCall');
    const sizes = outcome.messages.map((message) => message.payload?.body?.length ?? 0);
    check(JSON.stringify(sizes) === '[31415,92653]', `response sizes are [${sizes}], expected [31415,92653]`);
  }
}

async function main() {
  const args = protos.parseArguments(process.argv.slice(2),
    ['server_host', 'server_port', 'test_case', 'server_host_override', 'ca_file', 'proto_root'], ['use_tls'], USAGE);
  const port = Number(args.server_port);
  if (!Number.isInteger(port) || port <= 0 || port > 65535 || !args.test_case) {
    process.stderr.write(`error: --server_port (1-65535) and --test_case are required\n${USAGE}\n`);
    process.exit(2);
  }
  const cases = args.test_case === 'all' ? INTEROP_CASES : args.test_case.split(',');
  for (const name of cases) {
    if (!INTEROP_CASES.includes(name)) {
      process.stderr.write(`error: unknown test case '${name}' (known: ${INTEROP_CASES.join(', ')})\n`);
      process.exit(2);
    }
  }

  const testing = protos.loadTesting(grpc, protoLoader, protos.findProtoRoot(args.proto_root));
  const host = args.server_host ?? 'localhost';
  const target = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  const channelOptions = { 'grpc.max_receive_message_length': 16 * 1024 * 1024 };
  let credentials;
  if (args.use_tls) {
    const root = args.ca_file ? fs.readFileSync(args.ca_file) : null;
    credentials = grpc.credentials.createSsl(root);
    if (args.server_host_override) {
      channelOptions['grpc.ssl_target_name_override'] = args.server_host_override;
    }
  } else {
    credentials = grpc.credentials.createInsecure();
  }
  if (args.server_host_override) {
    channelOptions['grpc.default_authority'] = args.server_host_override;
  }
  const client = new Client((service, extra) => new testing[service](target, credentials, { ...channelOptions, ...extra }));

  let failed = 0;
  try {
    for (const name of cases) {
      try {
        await withTimeout(client[name](), CASE_TIMEOUT_MS, name);
        process.stdout.write(`PASSED ${name}\n`);
      } catch (error) {
        failed++;
        const reason = error instanceof CaseFailed
          ? error.message
          : error && error.code !== undefined
            ? `unexpected status ${statusName(error.code)} (${escape(error.details)})`
            : String(error && error.stack ? error.stack : error);
        process.stderr.write(`FAILED ${name}: ${reason}\n`);
      }
    }
  } finally {
    client.close();
  }
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    process.stderr.write(`interop: ${error && error.stack ? error.stack : error}\n`);
    process.exit(1);
  });
