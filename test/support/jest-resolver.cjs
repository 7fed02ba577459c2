// Nest 12 ships ES modules only, while some libraries built for it (@nestjs/throttler, nestjs-pino,
// @willsoto/nestjs-prometheus) are CommonJS and require() it. Node >= 20.19 loads an ES module from require();
// Jest's module loader only does so from Node 24.9. Under Jest on older Node, a require() of these two
// packages from CommonJS is answered with the ES module instance the tests already imported (see
// esm-bridge/), so every library shares one @nestjs/common and one @nestjs/core, as it does under Node.
const path = require('node:path');

const BRIDGED = {
  '@nestjs/common': path.join(__dirname, 'esm-bridge', 'nest-common.cjs'),
  '@nestjs/core': path.join(__dirname, 'esm-bridge', 'nest-core.cjs'),
};

module.exports = (request, options) => {
  const bridge = BRIDGED[request];
  if (bridge && options.conditions?.includes('require')) return bridge;
  return options.defaultResolver(request, options);
};
