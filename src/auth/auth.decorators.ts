import { SetMetadata } from '@nestjs/common';
import type { Scope } from './principal.js';

export const PUBLIC_ROUTE = 'bastion:public';
export const REQUIRED_SCOPE = 'bastion:scope';

/** A route anyone may call without credentials. Fail-closed: only what carries this is public. */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(PUBLIC_ROUTE, true);

/** The scope a principal needs for a REST route (MCP tools declare theirs on the tool). */
export const RequireScope = (scope: Scope): MethodDecorator & ClassDecorator =>
  SetMetadata(REQUIRED_SCOPE, scope);
