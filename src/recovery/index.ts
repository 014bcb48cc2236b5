/**
 * Non-GTID recovery of lagging replicas after the master died (MHA 0.58 §5.4, §5.7, §5.8):
 * saveBinlogTail (the dead master's binlog after the latest replica's read position), copyRelayDiff (what a
 * lagging replica lacks, from a latest replica's relay logs), and applyBinlogs (diff + tail through ONE
 * mysqlbinlog | mysql stream, so a transaction split between them stays whole). Every synthetic file is a
 * plain binlog: magic, a FORMAT_DESCRIPTION_EVENT, verbatim events.
 */
export * from './apply.js'
export * from './binlog-tail.js'
export * from './concat.js'
export * from './range-source.js'
export * from './relay-diff.js'
export * from './synthetic-writer.js'
