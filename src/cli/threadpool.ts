// Imported first by the CLI: libuv reads UV_THREADPOOL_SIZE once, at the first
// threadpool job. fsyncs from concurrent SMTP sessions run there in parallel;
// the default of 4 threads would make 50 sessions queue behind each other.
process.env.UV_THREADPOOL_SIZE ??= '32';
export {};
