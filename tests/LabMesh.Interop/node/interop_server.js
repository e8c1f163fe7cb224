#!/usr/bin/env node
'use strict';
/**
 * grpc.testing.TestService on Node's @grpc/grpc-js, for LabMesh's interop client to call.
 *
 * Implements the "Server" section of gRPC's interop test-case document: payloads of the requested
 * sizes, Echo Status, Echo Metadata, interval_us. UnimplementedCall is left out of the
 * implementation and UnimplementedService is not registered, so grpc-js answers both UNIMPLEMENTED.
 *
 * Usage: node interop_server.js --port N [--use_tls --tls_cert F --tls_key F] [--proto_root DIR] [--exit_with_stdin]
 * Prints "node interop server listening on port N (h2c|tls)" once it accepts calls (N is real when
 * --port 0). --exit_with_stdin stops the server when its standard input closes, so a test host that
 * dies without killing it leaves nothing behind.
 *
 * Limits of grpc-js's server API, so of this server:
 * - CompressedResponse: grpc-js never compresses a response (it always writes the compressed flag 0),
 *   so response_compressed is ignored.
 * - CompressedRequest: grpc-js consumes grpc-encoding and the message flag before the handler runs,
 *   so a handler cannot tell whether a request arrived compressed; expect_compressed is accepted
 *   either way, and the client_compressed_* probes (which expect INVALID_ARGUMENT) cannot pass.
 */

const fs = require('fs');
const protos = require('./interop_protos');

const USAGE = 'usage: node interop_server.js --port N [--use_tls --tls_cert CERT.pem --tls_key KEY.pem] [--proto_root DIR] [--exit_with_stdin]';
const READY_PREFIX = 'node interop server listening on port ';

const { grpc, protoLoader } = protos.requirePackages();
const { status: Status } = grpc;

const ECHO_INITIAL_KEY = 'x-grpc-test-echo-initial';
const ECHO_TRAILING_KEY = 'x-grpc-test-echo-trailing-bin';

/** A status to end the call with; thrown by the checks, turned into the call's end by the handlers. */
class StatusError extends Error {
  constructor(code, details) {
    super(details);
    this.code = code;
    this.details = details;
  }
}

/**
 * Echo Metadata: sends the request's x-grpc-test-echo-initial back in the response headers (with any
 * extra headers) and returns the trailers to end the call with (x-grpc-test-echo-trailing-bin).
 */
function echoMetadata(call, extraHeaders = []) {
  const initial = call.metadata.get(ECHO_INITIAL_KEY);
  if (initial.length > 0 || extraHeaders.length > 0) {
    const headers = new grpc.Metadata();
    for (const [key, value] of extraHeaders) {
      headers.add(key, value);
    }
    for (const value of initial) {
      headers.add(ECHO_INITIAL_KEY, value);
    }
    call.sendMetadata(headers);
  }
  const trailers = new grpc.Metadata();
  for (const value of call.metadata.get(ECHO_TRAILING_KEY)) {
    trailers.add(ECHO_TRAILING_KEY, value);
  }
  return trailers;
}

/** Echo Status: a request's response_status with a non-zero code ends the call with it. */
function throwIfEchoStatus(request) {
  const status = request.response_status;
  if (status && status.code !== 0) {
    throw new StatusError(status.code, status.message);
  }
}

function createPayload(type, size) {
  if (type !== 'COMPRESSABLE') {
    throw new StatusError(Status.INVALID_ARGUMENT, `Unsupported response type ${type}.`);
  }
  if (size < 0) {
    throw new StatusError(Status.INVALID_ARGUMENT, `Negative response size ${size}.`);
  }
  return { type, body: Buffer.alloc(size) };
}

/** The status object grpc-js sends for an error (a StatusError, or anything else as UNKNOWN). */
function toStatus(error, trailers) {
  if (error instanceof StatusError) {
    return { code: error.code, details: error.details, metadata: trailers };
  }
  return { code: Status.UNKNOWN, details: `interop server error: ${error && error.message ? error.message : error}`, metadata: trailers };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Writes one message, waiting for the stream to drain (or the call to be cancelled) when its buffer is full. */
function write(call, message) {
  if (call.write(message)) {
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    const done = () => {
      call.removeListener('drain', done);
      call.removeListener('cancelled', done);
      resolve();
    };
    call.on('drain', done);
    call.on('cancelled', done);
  });
}

/** One response per ResponseParameters, each after its interval_us; false once the call is cancelled. */
async function respond(call, request) {
  for (const parameters of request.response_parameters) {
    if (parameters.interval_us > 0) {
      await sleep(parameters.interval_us / 1000);
    }
    if (call.cancelled) {
      return false;
    }
    // parameters.compressed cannot be honoured: grpc-js's server does not compress.
    await write(call, { payload: createPayload(request.response_type, parameters.size) });
  }
  return !call.cancelled;
}

/**
 * Runs the handler for each request of a streaming call in order, one after another, then `finish`
 * after the client half-closes. The first error ends the call with its status; later requests are
 * ignored, as Echo Status asks.
 */
function serveRequests(call, trailers, handleRequest, finish) {
  let chain = Promise.resolve();
  let ended = false;
  const run = (step) => {
    chain = chain.then(async () => {
      if (ended || call.cancelled) {
        return;
      }
      try {
        await step();
      } catch (error) {
        ended = true;
        call.emit('error', toStatus(error, trailers));
      }
    });
  };
  call.on('data', (request) => run(() => handleRequest(request)));
  call.on('end', () => run(async () => {
    await finish();
    if (!ended && !call.cancelled) {
      ended = true;
      call.end(trailers);
    }
  }));
}

const handlers = {
  EmptyCall(call, callback) {
    const trailers = echoMetadata(call);
    callback(null, {}, trailers);
  },

  UnaryCall(call, callback) {
    const trailers = echoMetadata(call);
    try {
      const request = call.request;
      throwIfEchoStatus(request);
      // request.expect_compressed cannot be checked and request.response_compressed cannot be
      // honoured with grpc-js's server API (see the top of this file).
      callback(null, { payload: createPayload(request.response_type, request.response_size) }, trailers);
    } catch (error) {
      callback(toStatus(error, trailers));
    }
  },

  CacheableUnaryCall(call, callback) {
    const trailers = echoMetadata(call, [['cache-control', 'max-age=60, public']]);
    const now = process.hrtime.bigint() + BigInt(Date.now()) * 1000000n;
    callback(null, { payload: { type: 'COMPRESSABLE', body: Buffer.from(now.toString(), 'ascii') } }, trailers);
  },

  async StreamingOutputCall(call) {
    const trailers = echoMetadata(call);
    try {
      throwIfEchoStatus(call.request);
      if (await respond(call, call.request)) {
        call.end(trailers);
      }
    } catch (error) {
      call.emit('error', toStatus(error, trailers));
    }
  },

  StreamingInputCall(call, callback) {
    const trailers = echoMetadata(call);
    let total = 0;
    call.on('data', (request) => {
      total += request.payload && request.payload.body ? request.payload.body.length : 0;
    });
    call.on('end', () => callback(null, { aggregated_payload_size: total }, trailers));
    call.on('error', () => { /* a cancelled call; grpc-js has already ended it */ });
  },

  FullDuplexCall(call) {
    const trailers = echoMetadata(call);
    serveRequests(call, trailers, async (request) => {
      throwIfEchoStatus(request);
      await respond(call, request);
    }, async () => {});
  },

  HalfDuplexCall(call) {
    const trailers = echoMetadata(call);
    const requests = [];
    serveRequests(call, trailers, (request) => { requests.push(request); }, async () => {
      for (const request of requests) {
        throwIfEchoStatus(request);
        if (!await respond(call, request)) {
          return;
        }
      }
    });
  },

  // UnimplementedCall is left out on purpose: grpc-js answers it UNIMPLEMENTED.
};

function main() {
  const args = protos.parseArguments(process.argv.slice(2), ['port', 'tls_cert', 'tls_key', 'proto_root'], ['use_tls', 'exit_with_stdin'], USAGE);
  const port = args.port === undefined ? 0 : Number(args.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    process.stderr.write(`error: --port must be 0-65535, not '${args.port}'\n${USAGE}\n`);
    process.exit(2);
  }
  let credentials;
  if (args.use_tls) {
    if (!args.tls_cert || !args.tls_key) {
      process.stderr.write(`error: --use_tls needs --tls_cert and --tls_key\n${USAGE}\n`);
      process.exit(2);
    }
    credentials = grpc.ServerCredentials.createSsl(null,
      [{ cert_chain: fs.readFileSync(args.tls_cert), private_key: fs.readFileSync(args.tls_key) }], false);
  } else {
    credentials = grpc.ServerCredentials.createInsecure();
  }

  const testing = protos.loadTesting(grpc, protoLoader, protos.findProtoRoot(args.proto_root));
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 * 1024 * 1024 });
  server.addService(testing.TestService.service, handlers);

  let stopping = false;
  const stop = () => {
    if (stopping) {
      return;
    }
    stopping = true;
    setTimeout(() => {
      server.forceShutdown();
      process.exit(0);
    }, 1000).unref();
    server.tryShutdown(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (args.exit_with_stdin) {
    process.stdin.on('end', stop);
    process.stdin.on('close', stop);
    process.stdin.resume();
  }

  server.bindAsync(`127.0.0.1:${port}`, credentials, (error, boundPort) => {
    if (error) {
      protos.fatal(`could not bind 127.0.0.1:${port}: ${error.message}`);
    }
    process.stdout.write(`${READY_PREFIX}${boundPort} (${args.use_tls ? 'tls' : 'h2c'})\n`);
  });
}

main();
