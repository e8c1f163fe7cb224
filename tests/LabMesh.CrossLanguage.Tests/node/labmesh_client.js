#!/usr/bin/env node
// A Node @grpc/grpc-js client of the real LabMesh services (the all-in-one host, or a gateway).
//
// @grpc/proto-loader loads the repository's protos/ at run time; google.rpc.Status and BadRequest
// are read from google/rpc/*.proto with protobufjs (pass the folder that holds google/rpc/ with
// --google-protos). Each case prints JSON lines, one per observation ({"case": ..., "step": ..., ...});
// the test asserts on them. Exit code 0: the case ran (whatever the server answered is in the output);
// 1: it could not.
//
//   npm ci && node labmesh_client.js --target 127.0.0.1:5000 --google-protos DIR --case all
//   (the token: --token, or the LABMESH_TOKEN environment variable)
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const CASES = ['create_and_read', 'subscribe_live', 'subscribe_resume', 'bad_request'];
const LABMESH_PROTOS = [
  'labmesh/requisition/v1/requisition.proto',
  'labmesh/notification/v1/notification.proto',
];

function emit(fields) {
  process.stdout.write(JSON.stringify(fields) + '\n');
}

function fail(message) {
  process.stderr.write('labmesh_client: ' + message + '\n');
  process.exit(1);
}

function parseArgs(argv) {
  const args = {
    token: process.env.LABMESH_TOKEN,
    googleProtos: process.env.LABMESH_GOOGLE_PROTOS,
    protos: path.resolve(__dirname, '..', '..', '..', 'protos'),
    case: 'all',
    timeout: 20,
  };
  const names = { '--target': 'target', '--token': 'token', '--ca-file': 'caFile', '--protos': 'protos',
    '--google-protos': 'googleProtos', '--case': 'case', '--timeout': 'timeout' };
  for (let i = 2; i < argv.length; i += 2) {
    if (!(argv[i] in names) || i + 1 >= argv.length) fail('unknown or incomplete argument ' + argv[i]);
    args[names[argv[i]]] = argv[i + 1];
  }
  args.timeout = Number(args.timeout);
  if (!args.target) fail('--target host:port is required');
  if (!args.token) fail('no token (--token or LABMESH_TOKEN)');
  if (!args.googleProtos) fail('--google-protos (or LABMESH_GOOGLE_PROTOS) is required');
  if (args.case !== 'all' && !CASES.includes(args.case)) fail('--case is one of ' + CASES.join(', ') + ', all');
  return args;
}

// google.rpc.Status and BadRequest from their .proto files; google/protobuf/* are protobufjs's own.
function loadGoogleRpc(dir) {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => (path.isAbsolute(target) ? target : path.join(dir, target));
  for (const file of ['google/rpc/status.proto', 'google/rpc/error_details.proto']) {
    if (!fs.existsSync(path.join(dir, file))) fail(dir + ' has no ' + file + ' (pass --google-protos)');
  }
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
  return { Status: root.lookupType('google.rpc.Status'), BadRequest: root.lookupType('google.rpc.BadRequest') };
}

class Client {
  constructor(args) {
    const definition = protoLoader.loadSync(LABMESH_PROTOS, {
      // google/api/annotations.proto (the REST paths' google.api.http options) is in the --google-protos folder.
      includeDirs: [args.protos, args.googleProtos], keepCase: true, longs: String, enums: String, defaults: true, oneofs: true,
    });
    const loaded = grpc.loadPackageDefinition(definition);
    const credentials = args.caFile
      ? grpc.credentials.createSsl(fs.readFileSync(args.caFile))
      : grpc.credentials.createInsecure();
    this.timeout = args.timeout;
    this.metadata = new grpc.Metadata();
    this.metadata.set('authorization', 'Bearer ' + args.token);
    this.requisitions = new loaded.labmesh.requisition.v1.RequisitionService(args.target, credentials);
    this.notifications = new loaded.labmesh.notification.v1.NotificationService(args.target, credentials);
    this.rpc = loadGoogleRpc(args.googleProtos);
  }

  deadline() {
    return new Date(Date.now() + this.timeout * 1000);
  }

  unary(stub, method, request) {
    return new Promise((resolve, reject) => {
      stub[method](request, this.metadata, { deadline: this.deadline() }, (error, response) =>
        (error ? reject(error) : resolve(response)));
    });
  }

  create() {
    return this.unary(this.requisitions, 'CreateRequisition', {
      request_id: 'js-' + crypto.randomUUID(),
      patient: { id: 'js-patient-1' },
      modality: 'TEST_MODALITY_TESTKIT',
      tests: [{ code: 'LIPID_PANEL', partner_id: 'lab-a' }, { code: 'CBC', partner_id: 'lab-a' }],
      place: true,
    });
  }

  // A Subscribe stream of order.placed events, with a 1 s heartbeat.
  subscribe(resumeAfter) {
    const call = this.notifications.Subscribe({
      filter: { types: ['order.placed'] },
      resume_after: resumeAfter || '',
      heartbeat_interval: { seconds: 1, nanos: 0 },
    }, this.metadata, { deadline: this.deadline() });
    return { call, messages: call[Symbol.asyncIterator]() };
  }

  // Reads up to the first heartbeat: the server sends one only once it follows the bus and has
  // nothing buffered, so whatever happens next reaches this stream. Returns the events before it.
  static async waitUntilLive(stream) {
    const earlier = [];
    for (;;) {
      const next = await stream.messages.next();
      if (next.done) throw new Error('the Subscribe stream ended before its first heartbeat');
      if (next.value.item === 'heartbeat') return earlier;
      earlier.push(next.value.event.id);
    }
  }

  // Reads the stream (its deadline bounds the wait) until order.placed of requisitionId.
  static async waitForPlaced(stream, requisitionId, seen) {
    for (;;) {
      const next = await stream.messages.next();
      if (next.done) throw new Error('the Subscribe stream ended before order.placed of ' + requisitionId);
      const message = next.value;
      if (message.item === 'event') {
        const event = message.event;
        seen.push({ id: event.id, type: event.type, requisition_id: event.requisition_id, cursor: message.cursor });
        if (event.type === 'order.placed' && event.requisition_id === requisitionId) return message;
      }
    }
  }

  close() {
    this.requisitions.close();
    this.notifications.close();
  }
}

// A cancelled call still rejects its pending read with CANCELLED; nothing waits for it any more.
function cancel(stream) {
  stream.call.on('error', () => {});
  stream.call.cancel();
}

function requisitionJson(requisition) {
  return {
    id: requisition.id,
    team_id: requisition.team_id,
    status: requisition.status,
    sub_status: requisition.sub_status,
    lifecycle_status: requisition.lifecycle_status,
    tests: requisition.tests.map((t) => t.code),
    service_requests: requisition.service_requests.map((s) => ({
      id: s.id, requisition_id: s.requisition_id, code: s.code, partner_id: s.partner_id, line: s.line,
    })),
  };
}

const cases = {
  async create_and_read(client) {
    const created = await client.create();
    emit({ case: 'create_and_read', step: 'created', created: created.created, requisition: requisitionJson(created.requisition) });
    const read = await client.unary(client.requisitions, 'GetRequisition', { id: created.requisition.id });
    emit({ case: 'create_and_read', step: 'read', requisition: requisitionJson(read.requisition) });
  },

  async subscribe_live(client) {
    const stream = client.subscribe();
    try {
      const earlier = await Client.waitUntilLive(stream);
      emit({ case: 'subscribe_live', step: 'live', events_before: earlier.length });
      const created = await client.create();
      const message = await Client.waitForPlaced(stream, created.requisition.id, []);
      const event = message.event;
      emit({
        case: 'subscribe_live',
        step: 'event',
        requisition_id: created.requisition.id,
        event: {
          id: event.id,
          type: event.type,
          requisition_id: event.requisition_id,
          team_id: event.team_id,
          payload: event.payload,
          modality: event.order_placed ? event.order_placed.modality : null,
          line_items: event.order_placed
            ? event.order_placed.line_items.map((i) => ({ service_request_id: i.service_request_id, code: i.code }))
            : [],
        },
        cursor: message.cursor,
        service_request_ids: created.requisition.service_requests.map((s) => s.id),
      });
    } finally {
      cancel(stream);
    }
  },

  async subscribe_resume(client) {
    // The first order's order.placed, seen live, gives the event id to resume after.
    const live = client.subscribe();
    let firstOrder;
    let placed;
    try {
      await Client.waitUntilLive(live);
      firstOrder = await client.create();
      placed = await Client.waitForPlaced(live, firstOrder.requisition.id, []);
    } finally {
      cancel(live);
    }
    // The second order is placed while nobody follows the stream: only a replay can show it.
    const secondOrder = await client.create();
    const resumed = client.subscribe(placed.event.id);
    const replayed = [];
    try {
      await Client.waitForPlaced(resumed, secondOrder.requisition.id, replayed);
    } finally {
      cancel(resumed);
    }
    emit({
      case: 'subscribe_resume',
      step: 'resumed',
      resume_after: placed.event.id,
      first_requisition_id: firstOrder.requisition.id,
      first_cursor: placed.cursor,
      second_requisition_id: secondOrder.requisition.id,
      replayed,
    });
  },

  async bad_request(client) {
    try {
      await client.unary(client.requisitions, 'CreateRequisition', {
        request_id: 'js-bad-' + crypto.randomUUID(),
        patient: { id: '' },
        modality: 'TEST_MODALITY_TESTKIT',
        tests: [{ code: 'LIPID_PANEL', partner_id: '' }],
        place: true,
      });
    } catch (error) {
      if (error.code === undefined) throw error;
      const raw = error.metadata ? error.metadata.get('grpc-status-details-bin') : [];
      const details = [];
      let statusCode = null;
      if (raw.length > 0) {
        const status = client.rpc.Status.decode(raw[0]);
        statusCode = status.code;
        for (const detail of status.details) {
          const entry = { type_url: detail.type_url };
          if (detail.type_url.endsWith('/google.rpc.BadRequest')) {
            const badRequest = client.rpc.BadRequest.decode(detail.value);
            entry.field_violations = badRequest.fieldViolations.map((v) => ({ field: v.field, description: v.description }));
          }
          details.push(entry);
        }
      }
      emit({
        case: 'bad_request',
        step: 'error',
        code: grpc.status[error.code],
        message: error.details,
        status_details_trailer: raw.length > 0,
        status_code: statusCode,
        details,
      });
      return;
    }
    emit({ case: 'bad_request', step: 'no_error' });
  },
};

async function main() {
  const args = parseArgs(process.argv);
  const client = new Client(args);
  const version = JSON.parse(fs.readFileSync(require.resolve('@grpc/grpc-js/package.json'), 'utf8')).version;
  emit({ step: 'start', language: 'node', grpc: version, tls: Boolean(args.caFile) });
  try {
    for (const name of args.case === 'all' ? CASES : [args.case]) {
      await cases[name](client);
    }
    emit({ step: 'done' });
  } catch (error) {
    if (error.code === undefined) throw error;
    emit({ step: 'failed', code: grpc.status[error.code], message: error.details });
    process.exitCode = 1;
  } finally {
    client.close();
  }
}

main().catch((error) => {
  process.stderr.write((error && error.stack) || String(error));
  process.stderr.write('\n');
  process.exitCode = 1;
});
