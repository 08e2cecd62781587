/* Version 4 UUIDs (RFC 9562 section 5.4) for connection ids. */
#ifndef WSFWD_LIB_UUID_H
#define WSFWD_LIB_UUID_H

#include <stdint.h>

/* Turn 16 random bytes into a version 4 UUID: set the version and variant bits. */
void wsfwd_uuid_v4(uint8_t b[16]);

/* Write the 36-character lowercase text form and a NUL. */
void wsfwd_uuid_format(const uint8_t b[16], char out[37]);

#endif
