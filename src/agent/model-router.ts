import type { Principal } from '../auth/principal.js';
import type { AgentConfig, ProviderName } from '../config/config.schema.js';
import type { ModelProvider, ModelReply, ModelRequest } from './model-provider.js';
import type { ProviderError } from './providers/provider.errors.js';
import type { ResilientProvider } from './providers/resilient-provider.js';
import { RulesProvider } from './providers/rules.provider.js';

/** The provider and model chosen for one turn. */
export interface ModelChoice {
  provider: ModelProvider;
  name: ProviderName;
  model: string;
}

export interface ProviderStatus {
  name: ProviderName;
  circuit: 'closed' | 'open' | 'half-open';
}

/** Told about retries and circuit changes (metrics and logs attach here). */
export interface RouterHooks {
  onRetry?(provider: ProviderName, error: ProviderError, attempt: number, delayMs: number): void;
  onCircuit?(provider: ProviderName, state: ProviderStatus['circuit']): void;
}

export type ClientRole = 'read-only' | 'read-write' | 'admin';

export function roleOf(principal: Principal): ClientRole {
  if (principal.scopes.has('admin')) return 'admin';
  return principal.scopes.has('files:write') ? 'read-write' : 'read-only';
}

/**
 * Picks the provider and model for a turn: the first route matching the caller (role, MCP client name,
 * principal), else the default. Each provider is built once, wrapped in its own retries, timeout and
 * circuit breaker; the rules provider needs none of that (no network).
 */
export class ModelRouter {
  private readonly providers = new Map<ProviderName, ModelProvider>();

  constructor(
    private readonly config: AgentConfig,
    private readonly hooks: RouterHooks = {},
  ) {}

  select(principal: Principal, client?: string): ModelChoice {
    const role = roleOf(principal);
    const route = this.config.routes.find(
      (r) =>
        (r.role === undefined || r.role === role) &&
        (r.client === undefined || r.client === client) &&
        (r.principal === undefined || r.principal === principal.id),
    );
    const name = route?.provider ?? this.config.provider;
    // agent.model belongs to the default provider; another provider without a model gets its own default.
    const model =
      route?.model ??
      (name === this.config.provider ? this.config.model : undefined) ??
      this.defaultModel(name);
    return { provider: this.provider(name), name, model };
  }

  /** Every provider that has been used, with its circuit state (diagnostics). */
  status(): ProviderStatus[] {
    return [...this.providers].map(([name, provider]) => ({
      name,
      circuit: provider instanceof LazyProvider ? provider.circuitState() : 'closed',
    }));
  }

  private defaultModel(name: ProviderName): string {
    if (name === 'anthropic') return this.config.anthropic.model;
    if (name === 'openai') return this.config.openai.model;
    return 'rules';
  }

  private provider(name: ProviderName): ModelProvider {
    let provider = this.providers.get(name);
    if (!provider) {
      provider = this.build(name);
      this.providers.set(name, provider);
    }
    return provider;
  }

  private build(name: ProviderName): ModelProvider {
    if (name === 'rules') return new RulesProvider();
    return new LazyProvider(name, async () => {
      const [{ ResilientProvider }, inner] = await Promise.all([
        import('./providers/resilient-provider.js'),
        this.sdkProvider(name),
      ]);
      return new ResilientProvider(inner, this.config.resilience, {
        onRetry: (error, attempt, delayMs) => this.hooks.onRetry?.(name, error, attempt, delayMs),
        onCircuit: (state) => this.hooks.onCircuit?.(name, state),
      });
    });
  }

  private async sdkProvider(name: 'anthropic' | 'openai'): Promise<ModelProvider> {
    const { anthropic, openai } = this.config;
    if (name === 'anthropic') {
      const { AnthropicProvider } = await import('./providers/anthropic.provider.js');
      // Config validation requires the key whenever the anthropic provider is configured.
      return new AnthropicProvider({
        apiKey: anthropic.apiKey ?? '',
        ...(anthropic.baseUrl && { baseUrl: anthropic.baseUrl }),
      });
    }
    const { OpenAIProvider } = await import('./providers/openai.provider.js');
    return new OpenAIProvider({
      ...(openai.apiKey && { apiKey: openai.apiKey }),
      ...(openai.baseUrl && { baseUrl: openai.baseUrl }),
    });
  }
}

/**
 * A model provider over the network, loaded at its first request with its retries, timeout and circuit
 * breaker: a server that never asks a model (the rules provider, or no agent at all) never loads the
 * Anthropic or OpenAI SDK, nor the resilience library.
 */
export class LazyProvider implements ModelProvider {
  private loading?: Promise<ResilientProvider>;
  private loaded?: ResilientProvider;

  constructor(
    readonly name: ProviderName,
    private readonly load: () => Promise<ResilientProvider>,
  ) {}

  async complete(request: ModelRequest, signal: AbortSignal): Promise<ModelReply> {
    this.loading ??= this.load().then((provider) => (this.loaded = provider));
    return (await this.loading).complete(request, signal);
  }

  /** Closed until the first request: a breaker that has seen no call has not opened. */
  circuitState(): ProviderStatus['circuit'] {
    return this.loaded?.circuitState() ?? 'closed';
  }
}
