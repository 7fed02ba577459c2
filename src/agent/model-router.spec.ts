import { describe, expect, it } from '@jest/globals';
import type { Principal, Scope } from '../auth/principal.js';
import { configSchema } from '../config/config.schema.js';
import { LazyProvider, ModelRouter, roleOf } from './model-router.js';
import { RulesProvider } from './providers/rules.provider.js';

const principal = (id: string, ...scopes: Scope[]): Principal => ({
  id,
  kind: 'api-key',
  scopes: new Set<Scope>(['agent', ...scopes]),
  tier: 'default',
});

const agentConfig = (agent: Record<string, unknown>) =>
  configSchema.parse({
    agent: { anthropic: { apiKey: 'sk-test' }, openai: { baseUrl: 'http://127.0.0.1:11434/v1' }, ...agent },
  }).agent;

describe('ModelRouter', () => {
  it('answers everyone with the rules provider by default, without network resilience around it', () => {
    const router = new ModelRouter(agentConfig({}));
    const choice = router.select(principal('a', 'files:read'));
    expect(choice).toMatchObject({ name: 'rules', model: 'rules' });
    expect(choice.provider).toBeInstanceOf(RulesProvider);
  });

  it('uses agent.model for the default provider and each provider’s own default otherwise', () => {
    const router = new ModelRouter(
      agentConfig({
        provider: 'anthropic',
        model: 'claude-big',
        routes: [{ role: 'read-only', provider: 'openai' }],
      }),
    );
    expect(router.select(principal('w', 'files:read', 'files:write'))).toMatchObject({
      name: 'anthropic',
      model: 'claude-big',
    });
    expect(router.select(principal('r', 'files:read'))).toMatchObject({
      name: 'openai',
      model: 'gpt-4.1-mini',
    });
  });

  it('takes the first route that matches role, MCP client name and principal', () => {
    const router = new ModelRouter(
      agentConfig({
        provider: 'anthropic',
        routes: [
          { principal: 'ci-bot', provider: 'rules' },
          { client: 'cursor', model: 'claude-fast' },
          { role: 'read-only', model: 'claude-cheap' },
        ],
      }),
    );
    expect(router.select(principal('ci-bot', 'files:read')).name).toBe('rules');
    expect(router.select(principal('dev', 'files:read', 'files:write'), 'cursor').model).toBe('claude-fast');
    expect(router.select(principal('viewer', 'files:read'), 'claude-ai').model).toBe('claude-cheap');
    expect(router.select(principal('dev', 'files:read', 'files:write'), 'claude-ai').model).toBe(
      'claude-sonnet-4-6',
    );
  });

  it('builds each provider once, loaded with its retries and circuit breaker at the first call, and reports it', () => {
    const router = new ModelRouter(agentConfig({ provider: 'openai' }));
    const first = router.select(principal('a', 'files:read')).provider;
    expect(router.select(principal('b', 'files:read')).provider).toBe(first);
    expect(first).toBeInstanceOf(LazyProvider);
    expect(router.status()).toEqual([{ name: 'openai', circuit: 'closed' }]);
  });

  it('loads the retries and circuit breaker with the provider, and reports the breaker once it opens', async () => {
    // Nothing listens on port 9 of the loopback: every request is refused at once.
    const router = new ModelRouter(
      agentConfig({
        provider: 'openai',
        openai: { baseUrl: 'http://127.0.0.1:9/v1' },
        resilience: { retries: 0, breakerFailures: 1 },
      }),
    );
    const { provider, model } = router.select(principal('a', 'files:read'));
    const request = { model, system: 'test', messages: [], tools: [], maxOutputTokens: 16 };
    await expect(provider.complete(request, new AbortController().signal)).rejects.toMatchObject({
      code: 'provider_unavailable',
    });
    expect(router.status()).toEqual([{ name: 'openai', circuit: 'open' }]);
  });

  it('names the role from the scopes', () => {
    expect(roleOf(principal('x', 'files:read'))).toBe('read-only');
    expect(roleOf(principal('x', 'files:read', 'files:write'))).toBe('read-write');
    expect(roleOf(principal('x', 'files:read', 'admin'))).toBe('admin');
  });
});
