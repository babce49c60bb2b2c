// The app's one API client and the way it words errors; every screen
// imports them from here (not from App, which imports the screens).
import { ApiError, Client } from "./api";

export const client = new Client(undefined, undefined, typeof sessionStorage !== "undefined" ? sessionStorage : undefined);

export function message(e: unknown): string {
  if (e instanceof ApiError) return e.message;
  return e instanceof Error ? e.message : String(e);
}
