import { SetMetadata } from '@nestjs/common';
import { RouteConfig } from '@nestjs/platform-fastify';
import type { FastifyRequest } from 'fastify';
import type { Scope } from './principal.js';

/**
 * Who may call a route, as the HTTP gate reads it from the route the router matched:
 * - `principal`: any authenticated principal, holding `scope` when one is named (the default: fail closed);
 * - `public`: anyone, without credentials (`limited: false` also skips the per-IP limit: health probes);
 * - `metrics`: the scrape token, or a principal holding admin.
 */
export type RouteAccess =
  { kind: 'principal'; scope?: Scope } | { kind: 'public'; limited: boolean } | { kind: 'metrics' };

const ACCESS = 'bastion:access';
const AUTHENTICATED: RouteAccess = { kind: 'principal' };
const NO_ROUTE: RouteAccess = { kind: 'public', limited: true };

/**
 * The access rule of the route a request matched; a route that declares none needs a principal. A path no
 * route matches is answered 404 to anyone: there is nothing behind it to protect, and an OAuth client
 * probing /.well-known must learn there is no discovery rather than be asked to log in.
 */
export function accessOf(request: FastifyRequest): RouteAccess {
  if (request.routeOptions.url === undefined) return NO_ROUTE;
  const config = request.routeOptions.config as { bastionAccess?: RouteAccess } | undefined;
  return config?.bastionAccess ?? AUTHENTICATED;
}

/**
 * Declares a route's access on a method, or on every route method of a controller that does not declare
 * its own. It lands in the route's Fastify config, so the gate finds it on the matched route before any
 * body is read, whatever spelling of the path the client used.
 */
function declare(access: RouteAccess): MethodDecorator & ClassDecorator {
  const onMethod = (target: object, key: string | symbol, descriptor: PropertyDescriptor) => {
    SetMetadata(ACCESS, access)(target, key, descriptor);
    RouteConfig({ bastionAccess: access })(target, key, descriptor);
  };
  return ((target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => {
    if (key !== undefined && descriptor) return onMethod(target, key, descriptor);
    const proto = (target as { prototype: object }).prototype;
    for (const name of Object.getOwnPropertyNames(proto)) {
      const method = Object.getOwnPropertyDescriptor(proto, name);
      if (name === 'constructor' || typeof method?.value !== 'function') continue;
      if (Reflect.getMetadata(ACCESS, method.value) === undefined) onMethod(proto, name, method);
    }
  }) as MethodDecorator & ClassDecorator;
}

/** A route anyone may call without credentials. Fail-closed: only what carries this is public. */
export const Public = (options: { limited?: boolean } = {}): MethodDecorator & ClassDecorator =>
  declare({ kind: 'public', limited: options.limited ?? true });

/** A route for a principal holding `scope`. */
export const RequireScope = (scope: Scope): MethodDecorator & ClassDecorator =>
  declare({ kind: 'principal', scope });

/** /metrics: the scrape token, or a principal holding admin. */
export const MetricsAccess = (): MethodDecorator & ClassDecorator => declare({ kind: 'metrics' });
