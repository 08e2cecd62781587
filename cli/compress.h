/*
 * The DEFLATE codec wsfwd plugs into the library (wsfwd/deflate.h), on zlib: one reused
 * compressor per window size (deflateReset per message, no allocation per message) and raw
 * inflate streams. Counters for /stats. Built only with WSFWD_HAVE_DEFLATE. Not
 * thread-safe: the compressors are shared by every connection (wsfwd is one thread).
 */
#ifndef WSFWD_CLI_COMPRESS_H
#define WSFWD_CLI_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

#include "wsfwd/deflate.h"

typedef struct compress_ctx compress_ctx;

/* What the codec did since compress_codec_init. */
typedef struct compress_stats {
    uint64_t calls;           /* compress() calls */
    uint64_t bytes_in;        /* bytes given to the calls whose output was shorter */
    uint64_t bytes_out;       /* what those calls returned */
    uint64_t plain;           /* the other calls: output not shorter (the library then sends
                                 the message plain), did not fit, or zlib failed */
    uint64_t inflate_streams; /* inflate streams alive now */
} compress_stats;

/*
 * A codec compressing at level (1 to 9; zlib's meaning). Fills *out (user_data is the
 * context, which must outlive every config and connection using the codec). Returns 0, or -1
 * on a bad level or no memory.
 */
int compress_codec_init(compress_ctx **ctx, int level, wsfwd_deflate_codec *out);
void compress_codec_free(compress_ctx *ctx);
void compress_codec_stats(const compress_ctx *ctx, compress_stats *out);

/* The same with an allocator for zlib's state and the codec's own (tests inject failures);
   alloc_fn NULL means malloc and free. */
int compress_codec_init_alloc(compress_ctx **ctx, int level, wsfwd_deflate_codec *out,
                              void *(*alloc_fn)(void *opaque, size_t size),
                              void (*free_fn)(void *opaque, void *ptr), void *opaque);

#endif
