import { Controller, Get, Inject, NotFoundException } from '@nestjs/common';
import { Public } from './route-access.js';
import { Authenticator } from './authenticator.js';

/**
 * /.well-known: the OAuth protected-resource metadata (RFC 9728) in OAuth mode, at the root and at the
 * /mcp-suffixed path. In every other mode there is no discovery document at all: clients such as Cursor and
 * Claude Code stop sending their configured headers once they find OAuth discovery.
 */
@Public()
@Controller('.well-known')
export class WellKnownController {
  constructor(@Inject(Authenticator) private readonly auth: Authenticator) {}

  @Get('oauth-protected-resource')
  resource(): Record<string, unknown> {
    return this.metadata();
  }

  @Get('oauth-protected-resource/mcp')
  mcpResource(): Record<string, unknown> {
    return this.metadata();
  }

  private metadata(): Record<string, unknown> {
    if (this.auth.mode !== 'oauth') throw new NotFoundException();
    return {
      resource: this.auth.resourceUrl,
      authorization_servers: [this.auth.issuer],
      scopes_supported: [...this.auth.scopesSupported],
      bearer_methods_supported: ['header'],
      resource_name: 'Bastion',
    };
  }
}
