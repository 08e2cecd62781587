/*
 * The edge from a connection to its pool: what conn.c tells the pool it is a member of.
 * Only these calls cross it; conn.c never sees the pool's struct (pool.h), so the two
 * modules do not include each other. pool.c implements them.
 */
#ifndef WSFWD_LIB_MEMBER_H
#define WSFWD_LIB_MEMBER_H

#include "wsfwd.h"

/* Take c out of its pool and tell on_leave. c must be in a pool. */
void wsfwd_pool_remove(wsfwd_conn *c, wsfwd_leave_reason reason);

/* Count a message skipped for a slow member (drop policy). */
void wsfwd_pool_count_drop(wsfwd_pool *pool);

/*
 * A member started or stopped counting as congested. wsfwd_pool_uncount() keeps the pool
 * alive until the wsfwd_pool_resume() that must follow it, which resumes the paced members
 * if no member is congested any more.
 */
void wsfwd_pool_congested(wsfwd_pool *pool);
void wsfwd_pool_uncount(wsfwd_pool *pool);
void wsfwd_pool_resume(wsfwd_pool *pool);

#endif
