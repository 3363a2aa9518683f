import { ui } from "./page-elements.js";

/** The lines an error may show on: next to the form that failed. */
const lines = () => [ui.loginError, ui.groupError, ui.sendError];

/** Shows one error, next to what failed, and clears any other: an old error never stays beside a new one. */
export function showError(where: HTMLElement, text: string): void {
  for (const line of lines()) line.textContent = line === where ? text : "";
}

/** Clears the error shown, after something went right. */
export function clearError(): void {
  for (const line of lines()) line.textContent = "";
}
