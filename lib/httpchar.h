/* Character classes of HTTP (RFC 9110 section 5.6): tokens and optional white space. */
#ifndef WSFWD_LIB_HTTPCHAR_H
#define WSFWD_LIB_HTTPCHAR_H

#include <stdbool.h>
#include <string.h>

/* tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~ */
static inline bool wsfwd_is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* OWS: SP or HTAB. */
static inline bool wsfwd_is_ows(char c)
{
    return c == ' ' || c == '\t';
}

#endif
