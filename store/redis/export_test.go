package redis

// LibName is the Function library's name, for tests that remove it from a server.
var LibName = libName
