import {defineConfig} from 'vitest/config'

/**
 * Integration test files run one at a time within a lane, and the two lanes side by side, each in a vitest process
 * of its own (scripts/integration-lanes.sh). Files that share a loopback address, an etcd port (etcd-ha cuts its
 * port with nftables) or a cluster name stay in the same lane. A new file takes addresses no other file uses, and
 * goes in the lane that keeps the two about as long.
 */
const laneA = [
  'etcd-ha',
  'etcd-takeover-files',
  'etcd-secure',
  'sandbox-etcd',
  'state-store',
  'watch',
  'plan-is-data',
  'apply',
  'no-loss',
  'rejoin',
  'watch-events',
  'ssh',
  'switchover',
  'pairs-tiers',
  'refusals',
].map((name) => `test/integration/${name}.test.ts`)

const integration = {testTimeout: 180_000, hookTimeout: 180_000, fileParallelism: false, globalSetup: ['test/global-setup.ts']}

export default defineConfig({
  test: {
    disableConsoleIntercept: true,
    projects: [
      {test: {name: 'unit', include: ['test/unit/**/*.test.ts'], globalSetup: ['test/global-setup.ts']}},
      {test: {name: 'integration-a', include: laneA, ...integration}},
      {test: {name: 'integration-b', include: ['test/integration/**/*.test.ts'], exclude: laneA, ...integration}},
    ],
  },
})
