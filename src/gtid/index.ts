export * from './mariadb.js'
export * from './mysql.js'
