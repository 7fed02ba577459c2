// The @nestjs/common instance loaded by esm-bridge/setup.ts (see ../jest-resolver.cjs).
module.exports = globalThis[Symbol.for('bastion.test.esm:@nestjs/common')];
