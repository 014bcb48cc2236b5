import {isIP} from 'node:net'
import {UserError} from '../util/errors.js'

export interface ListenAddress {
  host: string
  port: number
}

/** ADDR:PORT for --listen: an IPv4 address, [IPv6] or a host name, and a port (0 picks a free one). */
export function parseListenAddress(text: string): ListenAddress {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(text)
  const host = match?.[1] ?? match?.[2]
  const port = match ? Number(match[3]) : NaN
  const hostOk = host !== undefined && (match?.[1] !== undefined ? isIP(host) === 6 : isIP(host) === 4 || (/^[A-Za-z]/.test(host) && !host.includes('..')))
  if (!hostOk || !Number.isInteger(port) || port > 65535)
    throw new UserError(`--listen ${JSON.stringify(text)}: give ADDR:PORT, for example 127.0.0.1:9104 or [::1]:9104 (port 0-65535)`)
  return {host, port}
}

export function formatListenAddress(address: ListenAddress): string {
  return isIP(address.host) === 6 ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`
}

/** Where a client on this machine reaches a server bound to this address (a wildcard bind is reached on loopback). */
export function clientAddress(address: ListenAddress): ListenAddress {
  if (address.host === '0.0.0.0') return {host: '127.0.0.1', port: address.port}
  if (address.host === '::') return {host: '::1', port: address.port}
  return address
}
