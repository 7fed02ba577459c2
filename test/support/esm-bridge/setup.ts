// Loads Nest's ES modules once per test file and publishes them for CommonJS libraries (../jest-resolver.cjs).
import * as common from '@nestjs/common';
import * as core from '@nestjs/core';

const target = globalThis as Record<symbol, unknown>;
target[Symbol.for('bastion.test.esm:@nestjs/common')] = common;
target[Symbol.for('bastion.test.esm:@nestjs/core')] = core;
