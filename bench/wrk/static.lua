-- A fixed request (method, path and headers from the command line): wrk builds it once, so the
-- load generator spends as little CPU per request as it can.

dofile('report.lua')
