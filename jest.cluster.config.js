// The cluster test (`npm run test:cluster`, after `npm run build`): redis-server, three Bastion processes and
// nginx on loopback. Kept out of `npm test` because it needs nginx; CI installs it and runs this too.
import base from './jest.config.js';

const [unit] = base.projects;

export default {
  ...unit,
  displayName: 'cluster',
  testMatch: ['<rootDir>/test/cluster/**/*.spec.ts'],
  testTimeout: base.testTimeout,
};
