'use strict';
/**
 * Loads grpc/testing/test.proto (with empty.proto and messages.proto) at run time with
 * @grpc/proto-loader, from the repository's protos/ folder, so the Node side always speaks the
 * same contract as LabMesh's generated code and the Python side.
 */

const fs = require('fs');
const path = require('path');

/** Exit code for a broken setup (missing packages or protos), as opposed to a failed case. */
const SETUP_FAILED = 3;

function fatal(message) {
  process.stderr.write(`interop: ${message}\n`);
  process.exit(SETUP_FAILED);
}

/** The @grpc/* packages, or a clear exit when `npm ci` has not been run in this folder. */
function requirePackages() {
  try {
    return { grpc: require('@grpc/grpc-js'), protoLoader: require('@grpc/proto-loader') };
  } catch (error) {
    fatal(`@grpc/grpc-js or @grpc/proto-loader is not installed (run \`npm ci\` in ${__dirname}): ${error.message}`);
    return undefined;
  }
}

/**
 * The directory holding grpc/testing/messages.proto: explicit, $LABMESH_PROTO_ROOT, the source
 * tree's protos/ (this file lives in tests/LabMesh.Interop/node/) or protos/ beside a build output.
 */
function findProtoRoot(explicit) {
  const candidates = [
    explicit,
    process.env.LABMESH_PROTO_ROOT,
    path.join(__dirname, '..', '..', '..', 'protos'),
    path.join(__dirname, '..', 'protos'),
  ];
  for (const candidate of candidates) {
    if (candidate && fs.existsSync(path.join(candidate, 'grpc', 'testing', 'messages.proto'))) {
      return path.resolve(candidate);
    }
  }
  fatal('cannot find grpc/testing/messages.proto (pass --proto_root)');
  return undefined;
}

/** The grpc.testing package object: service constructors (TestService, UnimplementedService) and their definitions. */
function loadTesting(grpc, protoLoader, protoRoot) {
  const definition = protoLoader.loadSync('grpc/testing/test.proto', {
    includeDirs: [protoRoot],
    keepCase: true, // field names as in the .proto (response_size, not responseSize)
    longs: String,
    enums: String, // PayloadType arrives as 'COMPRESSABLE'
    bytes: Buffer,
    defaults: true, // absent scalars read as their defaults; absent messages as null
    oneofs: true,
  });
  return grpc.loadPackageDefinition(definition).grpc.testing;
}

/**
 * Parses `--name value`, `--name=value` and bare boolean flags (`--use_tls`, also `--use_tls true`).
 * Unknown names and missing values exit 2 with the usage text.
 */
function parseArguments(argv, known, booleans, usage) {
  const values = {};
  const bad = (message) => {
    process.stderr.write(`error: ${message}\n${usage}\n`);
    process.exit(2);
  };
  for (let i = 0; i < argv.length; i++) {
    const argument = argv[i];
    if (argument === '--help' || argument === '-h') {
      process.stdout.write(`${usage}\n`);
      process.exit(0);
    }
    if (!argument.startsWith('--')) {
      bad(`unexpected argument '${argument}'`);
    }
    const equals = argument.indexOf('=');
    const name = argument.slice(2, equals < 0 ? undefined : equals);
    if (!known.includes(name) && !booleans.includes(name)) {
      bad(`unknown option '--${name}'`);
    }
    let value;
    if (equals >= 0) {
      value = argument.slice(equals + 1);
    } else if (booleans.includes(name)) {
      value = argv[i + 1] === 'true' || argv[i + 1] === 'false' ? argv[++i] : 'true';
    } else if (i + 1 < argv.length) {
      value = argv[++i];
    } else {
      bad(`option '--${name}' needs a value`);
    }
    if (booleans.includes(name)) {
      if (value !== 'true' && value !== 'false') {
        bad(`option '--${name}' takes true or false, not '${value}'`);
      }
      value = value === 'true';
    }
    values[name] = value;
  }
  return values;
}

module.exports = { SETUP_FAILED, fatal, requirePackages, findProtoRoot, loadTesting, parseArguments };
