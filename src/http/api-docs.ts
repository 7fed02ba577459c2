/**
 * The OpenAPI decorators of the REST routes and DTOs, recorded as the classes are defined and applied to
 * them only when the document is first asked for: @nestjs/swagger is a large import that most servers
 * never need, and loading it at start would cost every launch. Same names and arguments as @nestjs/swagger.
 */
type Swagger = typeof import('@nestjs/swagger');

type DecoratorName =
  | 'ApiBearerAuth'
  | 'ApiBody'
  | 'ApiCreatedResponse'
  | 'ApiExcludeController'
  | 'ApiNoContentResponse'
  | 'ApiOkResponse'
  | 'ApiOperation'
  | 'ApiProperty'
  | 'ApiPropertyOptional'
  | 'ApiResponse'
  | 'ApiTags';

type AnyDecorator = (target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => void;

const recorded: Array<(swagger: Swagger) => void> = [];
let applied = false;

function deferred<N extends DecoratorName>(name: N) {
  return (...args: Parameters<Swagger[N]>) =>
    ((target: object, key?: string | symbol, descriptor?: PropertyDescriptor) => {
      if (applied) throw new Error(`${name} on a class defined after the OpenAPI document was built`);
      recorded.push((swagger) => {
        const decorator = (swagger[name] as (...a: unknown[]) => AnyDecorator)(...args);
        decorator(target, key, descriptor);
      });
    }) as ClassDecorator & MethodDecorator & PropertyDecorator;
}

export const ApiBearerAuth = deferred('ApiBearerAuth');
export const ApiBody = deferred('ApiBody');
export const ApiCreatedResponse = deferred('ApiCreatedResponse');
export const ApiExcludeController = deferred('ApiExcludeController');
export const ApiNoContentResponse = deferred('ApiNoContentResponse');
export const ApiOkResponse = deferred('ApiOkResponse');
export const ApiOperation = deferred('ApiOperation');
export const ApiProperty = deferred('ApiProperty');
export const ApiPropertyOptional = deferred('ApiPropertyOptional');
export const ApiResponse = deferred('ApiResponse');
export const ApiTags = deferred('ApiTags');

/** Loads @nestjs/swagger and applies every recorded decorator, in the order TypeScript ran them; once. */
export async function loadSwagger(): Promise<Swagger> {
  const swagger = await import('@nestjs/swagger');
  if (!applied) {
    applied = true;
    for (const apply of recorded.splice(0)) apply(swagger);
  }
  return swagger;
}
