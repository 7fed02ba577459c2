import { closeSync, fstatSync, read, readSync, type Stats } from 'node:fs';
import { promisify } from 'node:util';

const readAsync = promisify(read);

/**
 * Reads up to this many bytes with one synchronous call. For a file in the page cache that costs a few
 * microseconds, far less than a round trip through libuv's thread pool; larger reads go to the pool so one
 * big file never holds up other requests.
 */
export const SYNC_READ_BYTES = 64 * 1024;

/**
 * A workspace file open for reading, by descriptor. Opened with O_NONBLOCK and checked to be a regular file
 * before any read, so no read here can wait on a FIFO or device.
 */
export class OpenFile {
  private closed = false;

  constructor(readonly fd: number) {}

  /** Reads into `buffer` at `offset`, from the file at `position`; resolves to the bytes read. */
  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<number> {
    if (length <= SYNC_READ_BYTES) return readSync(this.fd, buffer, offset, length, position);
    const { bytesRead } = await readAsync(this.fd, buffer, offset, length, position);
    return bytesRead;
  }

  stat(): Stats {
    return fstatSync(this.fd);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}
