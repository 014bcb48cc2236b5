import {parentPort, workerData} from 'node:worker_threads'
import {Secret} from '../util/secret.js'
import {LeaseKeeper} from './lease-keeper.js'
import {LeaseState} from './lease-state.js'
import type {EtcdSettings} from './settings.js'

/** What the main thread gives this thread (the password as text: a Secret does not cross threads). */
export interface LeaseWorkerData {
  settings: Omit<EtcdSettings, 'auth'> & {auth: {user: string; password: string; source: string} | undefined}
  buffer: SharedArrayBuffer
}

/** From this thread to the session in the main thread. */
export type LeaseWorkerMessage = {kind: 'started'} | {kind: 'up'; lease: string} | {kind: 'lost'; why: string} | {kind: 'problem'; why: string | null} | {kind: 'stopped'}

// A manager's lease kept in a thread of its own (EtcdSession with ownThread): its keepalives go out on time however
// busy the main thread is (10,000 clusters' pings and looks), and the LeaseState in shared memory says at once
// whether the lease is valid.
const data = workerData as LeaseWorkerData
const port = parentPort!
const post = (message: LeaseWorkerMessage) => port.postMessage(message)
const {auth, ...rest} = data.settings
const keeper = new LeaseKeeper({...rest, auth: auth ? {user: auth.user, password: new Secret(auth.password, auth.source)} : undefined}, new LeaseState(data.buffer), {
  up: (lease) => post({kind: 'up', lease}),
  lost: (why) => post({kind: 'lost', why}),
  problem: (why) => post({kind: 'problem', why}),
})
port.on('message', (message: {kind: 'stop'}) => {
  if (message.kind === 'stop')
    void keeper.stop().finally(() => {
      post({kind: 'stopped'})
      port.close()
    })
})
await keeper.start()
post({kind: 'started'})
