/**
 * The root of Bastion's domain errors: a stable machine-readable code and a message that is safe to show
 * to the caller (it quotes only what the caller sent). Each transport maps these at its edge.
 */
export class BastionError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}
