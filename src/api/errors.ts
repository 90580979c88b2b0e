// Errors whose message is meant for the user as is: bad arguments, absent entries, an
// instance that does not answer. The CLI prints them as one line, without a stack.
export class UserError extends Error {}
